package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// The demo page uploads straight to GCS (fake-gcs-server) and Azure Blob
// (Azurite) with the grants of the gcs and azure drivers: the bytes, the
// content type and the ownership metadata arrive in the store, and the
// preview loads through the download route's signed GET.
func TestCloudsDemoUploadsPNGs(t *testing.T) {
	for _, cs := range cloudStarters {
		t.Run(cs.name, func(t *testing.T) {
			s, c := newCloudStack(t, cs.start)
			s.openDemo(t, "images")
			files := [][]byte{makePNG(t, 64, 48, 11), makePNG(t, 32, 20, 12)}
			widths := []int{64, 32}
			s.pick(t, writeFile(t, "cat.png", files[0]), writeFile(t, "dog.png", files[1]))
			var keys []string
			for i, want := range files {
				it := s.waitSettled(t, i)
				if it.State != "done" {
					t.Fatalf("upload %d: state %q, code %q, message %q", i, it.State, it.Code, it.Message)
				}
				if it.Reported != "100" || it.Progress != "100" {
					t.Errorf("upload %d: client reported %q %%, bar at %q %%, want 100", i, it.Reported, it.Progress)
				}
				if !strings.HasPrefix(it.Key, "images/") {
					t.Errorf("upload %d: key %q not made from the profile's template", i, it.Key)
				}
				keys = append(keys, it.Key)

				obj := c.read(t, it.Key)
				if !bytes.Equal(obj.Data, want) {
					t.Errorf("upload %d: %s holds %d bytes that differ from the %d sent", i, it.Key, len(obj.Data), len(want))
				}
				if obj.ContentType != "image/png" {
					t.Errorf("upload %d: the store has content type %q, want image/png", i, obj.ContentType)
				}
				if obj.Metadata["upbrokerprofile"] != "images" || obj.Metadata["upbrokerprincipal"] == "" {
					t.Errorf("upload %d: ownership metadata %v, want upbrokerprofile=images and a principal", i, obj.Metadata)
				}
				// The driver, which the broker verifies with, agrees.
				got, info := s.readObject(t, c.backend, it.Key, int64(len(want)))
				if !bytes.Equal(got, want) || info.ContentType != "image/png" || info.Size != int64(len(want)) {
					t.Errorf("upload %d: the driver reads %d bytes (equal: %v), type %q, size %d", i, len(got), bytes.Equal(got, want), info.ContentType, info.Size)
				}

				s.waitFor(t, "the preview", fmt.Sprintf(
					`(() => { const i = document.querySelector('#upload-%d [data-role="preview"]'); return i && i.complete && i.naturalWidth > 0; })()`, i))
				if w := s.item(t, i).Preview; w != widths[i] {
					t.Errorf("upload %d: preview is %d px wide, want %d", i, w, widths[i])
				}
			}
			slices.Sort(keys)
			if objs := c.list(t); !slices.Equal(objs, keys) {
				t.Errorf("the store holds %v, want exactly %v", objs, keys)
			}
			// Straight to the store: one PUT per file, no form, no proxying
			// through the broker.
			if m := c.Gate.Methods(); m["PUT"] != len(files) || len(m) != 1 {
				t.Errorf("uploads sent to the store by method: %v, want %d PUT", m, len(files))
			}
		})
	}
}

// A file of a type the profile does not allow is refused in words, before
// the browser sends anything to the store.
func TestCloudsDemoRefusesType(t *testing.T) {
	for _, cs := range cloudStarters {
		t.Run(cs.name, func(t *testing.T) {
			s, c := newCloudStack(t, cs.start)
			s.openDemo(t, "images")
			s.pick(t, writeFile(t, "note.txt", []byte("hello, world\n")))
			it := s.waitSettled(t, 0)
			if it.State != "error" || it.Code != "unsupported_type" {
				t.Fatalf("state %q code %q (message %q), want error unsupported_type", it.State, it.Code, it.Message)
			}
			if want := "Files of type text/plain are not allowed here"; it.Message != want {
				t.Errorf("message %q, want %q", it.Message, want)
			}
			if objs := c.list(t); len(objs) != 0 {
				t.Errorf("a refused upload left %v in the store", objs)
			}
			if m := c.Gate.Methods(); len(m) != 0 {
				t.Errorf("a refused upload reached the store: %v", m)
			}
		})
	}
}

// Azure's SAS cannot limit size, so Azurite takes a body of any length; the
// broker's check on completion is what stands between a wrong size and the
// store. A client that sends other than the granted size gets 422
// rejected and its blob is deleted; the exact size completes.
func TestAzureSizeCheckedAfterUpload(t *testing.T) {
	png := makePNG(t, 16, 16, 21)
	tests := []struct {
		name       string
		body       []byte
		wantStatus int
		wantCode   string
	}{
		{"exact", png, http.StatusOK, ""},
		{"longer", append(slices.Clone(png), make([]byte, 4096)...), http.StatusUnprocessableEntity, "rejected"},
		{"shorter", png[:len(png)-8], http.StatusUnprocessableEntity, "rejected"},
	}
	s, c := newCloudStack(t, startAzureCloud)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var grant struct {
				Key    string `json:"key"`
				Upload *struct {
					Method  string            `json:"method"`
					URL     string            `json:"url"`
					Headers map[string]string `json:"headers"`
				} `json:"upload"`
				Enforced struct {
					Size string `json:"size"`
				} `json:"enforced"`
				CompleteURL string `json:"complete_url"`
			}
			status, body := apiCall(t, http.MethodPost, s.URL+"/v1/uploads", nil, map[string]any{
				"filename": "pic.png", "content_type": "image/png", "size": len(png), "profile": "images",
			})
			if status != http.StatusCreated {
				t.Fatalf("grant: %d %s", status, body)
			}
			if err := json.Unmarshal(body, &grant); err != nil || grant.Upload == nil {
				t.Fatalf("grant %s: %v", body, err)
			}
			if grant.Enforced.Size != "after_upload" {
				t.Errorf("enforced.size %q, want after_upload", grant.Enforced.Size)
			}

			// Azurite accepts the wrong size: only the broker can refuse it.
			status, body = apiCall(t, grant.Upload.Method, grant.Upload.URL, grant.Upload.Headers, tc.body)
			if status != http.StatusCreated {
				t.Fatalf("upload of %d bytes: %d %s", len(tc.body), status, body)
			}
			if got := c.read(t, grant.Key).Data; !bytes.Equal(got, tc.body) {
				t.Fatalf("before completion the blob holds %d bytes, want the %d sent", len(got), len(tc.body))
			}

			status, body = apiCall(t, http.MethodPost, grant.CompleteURL, nil, map[string]any{})
			var apiErr struct {
				Error struct {
					Code  string `json:"code"`
					Field string `json:"field"`
				} `json:"error"`
			}
			_ = json.Unmarshal(body, &apiErr)
			if status != tc.wantStatus || apiErr.Error.Code != tc.wantCode {
				t.Fatalf("complete: %d %s, want %d %q", status, body, tc.wantStatus, tc.wantCode)
			}
			stored := slices.Contains(c.list(t), grant.Key)
			switch {
			case tc.wantCode == "" && !stored:
				t.Errorf("a completed upload is gone from the store")
			case tc.wantCode != "" && stored:
				t.Errorf("a rejected blob of %d bytes is still in the store", len(tc.body))
			case tc.wantCode != "" && apiErr.Error.Field != "size":
				t.Errorf("rejection names field %q, want size", apiErr.Error.Field)
			}
		})
	}
}

// apiCall sends one request; a map body is JSON, a byte slice is raw.
func apiCall(t *testing.T, method, u string, headers map[string]string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case []byte:
		r = bytes.NewReader(b)
	case nil:
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
		if headers == nil {
			headers = map[string]string{}
		}
		headers["Content-Type"] = "application/json"
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp.StatusCode, b
}
