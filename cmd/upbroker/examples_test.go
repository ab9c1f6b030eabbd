package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/upbroker/upbroker/internal/testenv"
)

// The shipped configs listen on 127.0.0.1:8080; startServe puts a free
// port where ADDR stands.
func shippedConfig(t *testing.T, name string) string {
	t.Helper()
	return strings.ReplaceAll(readRepoFile(t, filepath.Join("testdata", name)), "127.0.0.1:8080", "ADDR")
}

func readRepoFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// grantBody is the part of a grant that a client acts on.
type grantBody struct {
	Key    string `json:"key"`
	Upload *struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	} `json:"upload"`
	Multipart *struct {
		PartSize  int64  `json:"part_size"`
		PartCount int    `json:"part_count"`
		PartsURL  string `json:"parts_url"`
	} `json:"multipart"`
	CompleteURL string `json:"complete_url"`
}

// send makes one request and returns the status, the headers and the body.
func send(t *testing.T, method, url string, headers map[string]string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

var jsonHeader = map[string]string{"Content-Type": "application/json"}

func askGrant(t *testing.T, s *server, body []byte) grantBody {
	t.Helper()
	code, _, b := send(t, http.MethodPost, s.base+"/v1/uploads", jsonHeader, body)
	if code != http.StatusCreated {
		t.Fatalf("grant: %d %s", code, b)
	}
	var g grantBody
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("grant: %v: %s", err, b)
	}
	return g
}

// completeAndDownload completes an upload, then downloads it through the
// broker's redirect and compares the bytes.
func completeAndDownload(t *testing.T, s *server, g grantBody, completeBody []byte, want []byte) {
	t.Helper()
	code, _, b := send(t, http.MethodPost, g.CompleteURL, jsonHeader, completeBody)
	if code != http.StatusOK {
		t.Fatalf("complete: %d %s", code, b)
	}
	var done struct {
		Key  string `json:"key"`
		Size int64  `json:"size"`
	}
	if err := json.Unmarshal(b, &done); err != nil || done.Key != g.Key || done.Size != int64(len(want)) {
		t.Fatalf("complete answered %s (%v), want key %s and size %d", b, err, g.Key, len(want))
	}
	// The client follows the 307 to the store's signed GET.
	code, _, got := send(t, http.MethodGet, s.base+"/v1/downloads/"+g.Key, nil, nil)
	if code != http.StatusOK || !bytes.Equal(got, want) {
		t.Fatalf("download: %d, %d bytes, want the %d uploaded", code, len(got), len(want))
	}
}

// TestQuickStart runs the README's quick start, with its own request body
// and file, against `upbroker serve` on testdata/dev.yaml, the config that
// `make run` serves.
func TestQuickStart(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	quick, _, _ := strings.Cut(readme[strings.Index(readme, "## Quick start"):], "\n## ")
	file := regexp.MustCompile(`printf '([^']*)' > hello\.txt`).FindStringSubmatch(quick)
	body := regexp.MustCompile(`-d '(\{"filename"[^']*\})'`).FindStringSubmatch(quick)
	if file == nil || body == nil {
		t.Fatalf("the README's quick start has no printf of hello.txt or no grant request:\n%s", quick)
	}
	content := []byte(strings.ReplaceAll(file[1], `\n`, "\n"))
	var req struct{ Size int }
	if err := json.Unmarshal([]byte(body[1]), &req); err != nil || req.Size != len(content) {
		t.Fatalf("the quick start asks for %d bytes (%v) but hello.txt has %d", req.Size, err, len(content))
	}

	s := startServe(t, shippedConfig(t, "dev.yaml"))
	g := askGrant(t, s, []byte(body[1]))
	if g.Upload == nil {
		t.Fatalf("grant without an upload: %+v", g)
	}
	if code, _, b := send(t, g.Upload.Method, g.Upload.URL, g.Upload.Headers, content); code != http.StatusOK {
		t.Fatalf("upload: %d %s", code, b)
	}
	completeAndDownload(t, s, g, []byte("{}"), content)
}

// TestMinIOConfig serves testdata/minio.yaml against a MinIO server, as the
// README's "Running against MinIO" does by hand: one image in one PUT, and
// a 20 MiB video in parts.
func TestMinIOConfig(t *testing.T) {
	m := testenv.StartMinIO(t)
	if m == nil {
		return
	}
	m.Bucket(t, "uploads")
	s := startServe(t, shippedConfig(t, "minio.yaml"),
		"MINIO_ACCESS_KEY="+m.AccessKey, "MINIO_SECRET_KEY="+m.SecretKey,
		"UPBROKER_BACKENDS_MINIO_ENDPOINT="+m.Endpoint)

	t.Run("one PUT", func(t *testing.T) {
		png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{1}, 200)...)
		g := askGrant(t, s, fmt.Appendf(nil, `{"filename":"cat.png","content_type":"image/png","size":%d}`, len(png)))
		if g.Upload == nil || g.Multipart != nil {
			t.Fatalf("want a single PUT grant: %+v", g)
		}
		if code, _, b := send(t, g.Upload.Method, g.Upload.URL, g.Upload.Headers, png); code != http.StatusOK {
			t.Fatalf("upload: %d %s", code, b)
		}
		completeAndDownload(t, s, g, []byte("{}"), png)
	})

	t.Run("multipart", func(t *testing.T) {
		const size = 20 << 20
		video := bytes.Repeat([]byte("0123456789abcdef"), size/16)
		g := askGrant(t, s, fmt.Appendf(nil, `{"filename":"clip.mp4","content_type":"video/mp4","size":%d,"profile":"videos"}`, size))
		// videos: multipart_threshold 16MiB, part_size 8MiB.
		if g.Upload != nil || g.Multipart == nil || g.Multipart.PartSize != 8<<20 || g.Multipart.PartCount != 3 {
			t.Fatalf("want 3 parts of 8 MiB: %+v %+v", g.Upload, g.Multipart)
		}
		code, _, b := send(t, http.MethodGet, g.Multipart.PartsURL+"?numbers=1-3", nil, nil)
		var parts struct {
			Parts []struct {
				Number  int               `json:"number"`
				Method  string            `json:"method"`
				URL     string            `json:"url"`
				Headers map[string]string `json:"headers"`
				Size    int64             `json:"size"`
			} `json:"parts"`
		}
		if err := json.Unmarshal(b, &parts); code != http.StatusOK || err != nil || len(parts.Parts) != 3 {
			t.Fatalf("parts: %d %v %s", code, err, b)
		}
		type done struct {
			Number int    `json:"number"`
			ETag   string `json:"etag"`
		}
		var list []done
		var off int64
		for _, p := range parts.Parts {
			code, h, b := send(t, p.Method, p.URL, p.Headers, video[off:off+p.Size])
			if code != http.StatusOK || h.Get("ETag") == "" {
				t.Fatalf("part %d: %d %s", p.Number, code, b)
			}
			list = append(list, done{p.Number, h.Get("ETag")})
			off += p.Size
		}
		if off != size {
			t.Fatalf("the parts cover %d bytes, not %d", off, size)
		}
		req, err := json.Marshal(map[string]any{"parts": list})
		if err != nil {
			t.Fatal(err)
		}
		completeAndDownload(t, s, g, req, video)
	})
}
