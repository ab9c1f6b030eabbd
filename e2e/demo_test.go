package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

const fileYAML = `
server:
  addr: 127.0.0.1:8080
  public_url: {{.PublicURL}}
  demo_page: true
secrets:
  ticket_keys: ["{{.TicketKey}}"]
auth:
  mode: none
backends:
  local:
    driver: file
    path: {{.DataDir}}
profiles:
  images:
    backend: local
    content_types: [image/png, image/jpeg]
    max_size: 10MiB
    key: "images/{principal}/{uuid}{ext}"
    expires: 5m
    sniff: true
  files:
    backend: local
    content_types: [application/octet-stream]
    max_size: 64MiB
    key: "files/{principal}/{uuid}{ext}"
    expires: 5m
default_profile: images
`

const minioYAML = `
server:
  addr: 127.0.0.1:8080
  public_url: {{.PublicURL}}
  demo_page: true
secrets:
  ticket_keys: ["{{.TicketKey}}"]
auth:
  mode: none
backends:
  minio:
    driver: minio
    endpoint: {{.MinIOEndpoint}}
    public_endpoint: {{.PublicEndpoint}}
    region: us-east-1
    bucket: {{.Bucket}}
    access_key: {{.AccessKey}}
    secret_key: {{.SecretKey}}
profiles:
  images:
    backend: minio
    content_types: [image/png, image/jpeg]
    max_size: 10MiB
    key: "images/{principal}/{uuid}{ext}"
    expires: 5m
    sniff: true
  files:
    backend: minio
    content_types: [application/octet-stream]
    max_size: 64MiB
    key: "files/{principal}/{uuid}{ext}"
    expires: 5m
    multipart_threshold: 8MiB
    part_size: 5MiB
  forms:
    backend: minio
    content_types: [image/png, image/jpeg]
    max_size: 10MiB
    key: "forms/{principal}/{uuid}{ext}"
    expires: 5m
    method: post
  uppy:
    backend: minio
    content_types: [image/png]
    max_size: 32MiB
    key: "uppy/{principal}/{uuid}{ext}"
    expires: 5m
    part_size: 5MiB
compat:
  companion:
    enabled: true
    path: /s3
    profile: uppy
default_profile: images
`

// store is one backend the demo page is tested against.
type store struct {
	name    string
	yaml    string
	minio   bool
	backend string
	// images is the profile for PNGs, and method how its grants upload.
	images, method string
}

var stores = []store{
	{name: "file", yaml: fileYAML, backend: "local", images: "images", method: "PUT"},
	{name: "minio", yaml: minioYAML, minio: true, backend: "minio", images: "images", method: "PUT"},
}

// postForm is MinIO with a profile whose grants are POST forms.
var postForm = store{name: "minio-post", yaml: minioYAML, minio: true, backend: "minio", images: "forms", method: "POST"}

// makePNG draws a real image, so that the preview has a size to check.
func makePNG(t *testing.T, w, h int, seed uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), seed, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// openDemo loads the demo page with a profile chosen.
func (s *stack) openDemo(t *testing.T, profile string) {
	t.Helper()
	s.run(t, chromedp.Navigate(s.URL+"/?profile="+profile))
	s.waitFor(t, "the demo page", `document.body.dataset.ready === "true"`)
}

// pick gives files to the page's file input, as a user picking them would.
func (s *stack) pick(t *testing.T, paths ...string) {
	t.Helper()
	s.run(t, chromedp.SetUploadFiles(chromedp.CSS("#file-input"), paths))
}

// item is what the page shows for one upload.
type item struct {
	State    string `json:"state"`
	Progress string `json:"progress"`
	Reported string `json:"reported"`
	Key      string `json:"key"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	Preview  int    `json:"preview"`
	Download string `json:"download"`
}

func (s *stack) item(t *testing.T, i int) item {
	t.Helper()
	return eval[item](t, s, fmt.Sprintf(`(() => {
		const li = document.getElementById("upload-%d");
		const img = li.querySelector('[data-role="preview"]');
		const a = li.querySelector('[data-role="download"]');
		return { state: li.dataset.state || "", progress: li.dataset.progress || "",
			reported: li.dataset.reported || "", key: li.dataset.key || "",
			code: li.dataset.code || "", message: li.querySelector('[data-role="message"]').textContent,
			preview: img && img.complete ? img.naturalWidth : 0, download: a ? a.href : "" };
	})()`, i))
}

// waitSettled waits until upload i is done, failed or cancelled.
func (s *stack) waitSettled(t *testing.T, i int) item {
	t.Helper()
	s.waitFor(t, fmt.Sprintf("upload %d to settle", i), fmt.Sprintf(
		`["done", "error", "cancelled"].includes((document.getElementById("upload-%d") || {dataset: {}}).dataset.state)`, i))
	return s.item(t, i)
}

func TestDemoUploadsPNGs(t *testing.T) {
	for _, st := range append(stores, postForm) {
		t.Run(st.name, func(t *testing.T) {
			s := newStack(t, st.yaml, stackOptions{minio: st.minio})
			s.openDemo(t, st.images)
			files := [][]byte{makePNG(t, 64, 48, 1), makePNG(t, 32, 20, 2)}
			widths := []int{64, 32}
			s.pick(t, writeFile(t, "cat.png", files[0]), writeFile(t, "dog.png", files[1]))
			for i, want := range files {
				it := s.waitSettled(t, i)
				if it.State != "done" {
					t.Fatalf("upload %d: state %q, message %q", i, it.State, it.Message)
				}
				if it.Reported != "100" || it.Progress != "100" {
					t.Errorf("upload %d: client reported %q %%, bar at %q %%, want 100", i, it.Reported, it.Progress)
				}
				got, info := s.readObject(t, st.backend, it.Key, int64(len(want)))
				if !bytes.Equal(got, want) {
					t.Errorf("upload %d: object %s holds %d bytes that differ from the %d sent", i, it.Key, len(got), len(want))
				}
				if info.ContentType != "image/png" {
					t.Errorf("upload %d: content type %q", i, info.ContentType)
				}
				if !strings.HasPrefix(it.Key, st.images+"/") {
					t.Errorf("upload %d: key %q not made from the profile's template", i, it.Key)
				}
				s.waitFor(t, "the preview", fmt.Sprintf(
					`(() => { const i = document.querySelector('#upload-%d [data-role="preview"]'); return i && i.complete && i.naturalWidth > 0; })()`, i))
				if w := s.item(t, i).Preview; w != widths[i] {
					t.Errorf("upload %d: preview is %d px wide, want %d", i, w, widths[i])
				}
			}
			if m := s.Gate.Methods(); m[st.method] != len(files) || len(m) != 1 {
				t.Errorf("uploads sent to the store by method: %v, want %d %s", m, len(files), st.method)
			}
		})
	}
}

func TestDemoRefusals(t *testing.T) {
	tests := []struct {
		store    store
		name     string
		file     string
		data     []byte
		profile  string
		wantCode string
		wantMsg  string
	}{
		{stores[0], "type", "note.txt", []byte("hello, world\n"), "images", "unsupported_type", "Files of type text/plain are not allowed here"},
		{stores[1], "type", "note.txt", []byte("hello, world\n"), "images", "unsupported_type", "Files of type text/plain are not allowed here"},
		{stores[0], "size", "huge.png", append(makePNG(t, 8, 8, 3), make([]byte, 11<<20)...), "images", "too_large", "File is larger than 10 MiB"},
	}
	for _, tc := range tests {
		t.Run(tc.store.name+"/"+tc.name, func(t *testing.T) {
			s := newStack(t, tc.store.yaml, stackOptions{minio: tc.store.minio})
			s.openDemo(t, tc.profile)
			s.pick(t, writeFile(t, tc.file, tc.data))
			it := s.waitSettled(t, 0)
			if it.State != "error" || it.Code != tc.wantCode {
				t.Fatalf("state %q code %q (message %q), want error %q", it.State, it.Code, it.Message, tc.wantCode)
			}
			if it.Message != tc.wantMsg {
				t.Errorf("message %q, want %q", it.Message, tc.wantMsg)
			}
			if objs := s.objects(t); len(objs) != 0 {
				t.Errorf("a refused upload left %v in the store", objs)
			}
		})
	}
}

func partNumber(r *http.Request) string { return r.URL.Query().Get("partNumber") }

// A 20 MiB file goes up in four 5 MiB parts, and a part that fails once
// is retried.
func TestDemoMultipartMinIO(t *testing.T) {
	s := newStack(t, minioYAML, stackOptions{minio: true})
	s.Gate.FailOnce(func(r *http.Request) bool { return partNumber(r) == "2" })
	s.openDemo(t, "files")
	want := randomBytes(t, 20<<20)
	s.pick(t, writeFile(t, "big.bin", want))
	it := s.waitSettled(t, 0)
	if it.State != "done" {
		t.Fatalf("state %q, message %q", it.State, it.Message)
	}
	if it.Reported != "100" {
		t.Errorf("client reported %q %%, want 100", it.Reported)
	}
	got, info := s.readObject(t, "minio", it.Key, int64(len(want)))
	if !bytes.Equal(got, want) {
		t.Errorf("object holds %d bytes that differ from the %d sent", len(got), len(want))
	}
	if info.ContentType != "application/octet-stream" {
		t.Errorf("content type %q", info.ContentType)
	}
	parts := map[string]int{}
	s.Gate.mu.Lock()
	for id, n := range s.Gate.attempts {
		if i := strings.Index(id, "partNumber="); i >= 0 {
			q := id[i+len("partNumber="):]
			if j := strings.IndexByte(q, '&'); j >= 0 {
				q = q[:j]
			}
			parts[q] += n
		}
	}
	s.Gate.mu.Unlock()
	if len(parts) != 4 {
		t.Errorf("parts sent: %v, want 4 parts", parts)
	}
	if parts["2"] != 2 {
		t.Errorf("part 2 was sent %d times, want 2 (one failure, one retry)", parts["2"])
	}
	if open := s.openUploads(t); len(open) != 0 {
		t.Errorf("multipart uploads left open: %v", open)
	}
}

// Cancel mid-way: the gate holds the upload (on MinIO, every part but the
// first, so that the store already holds a part when the user cancels),
// the test clicks Cancel, and nothing may remain.
func TestDemoCancel(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := newStack(t, st.yaml, stackOptions{minio: st.minio})
			var path string
			if st.minio {
				s.Gate.Hold(func(r *http.Request) bool { p := partNumber(r); return p != "" && p != "1" })
				s.openDemo(t, "files")
				path = writeFile(t, "big.bin", randomBytes(t, 20<<20))
			} else {
				s.Gate.Hold(func(*http.Request) bool { return true })
				s.openDemo(t, "images")
				path = writeFile(t, "cat.png", makePNG(t, 64, 48, 4))
			}
			s.pick(t, path)
			receive(t, "held upload request", s.Gate.held)
			if st.minio {
				receive(t, "first part", s.Gate.passed)
				if open := s.openUploads(t); len(open) != 1 {
					t.Fatalf("before cancel: open uploads %v, want one", open)
				}
			}
			if it := s.item(t, 0); it.State != "uploading" {
				t.Fatalf("before cancel: state %q (%s)", it.State, it.Message)
			}
			s.run(t, chromedp.Click(chromedp.CSS(`#upload-0 [data-role="cancel"]`)))
			it := s.waitSettled(t, 0)
			if it.State != "cancelled" {
				t.Fatalf("state %q, message %q, want cancelled", it.State, it.Message)
			}
			receive(t, "the browser to drop the held request", s.Gate.dropped)
			if objs := s.objects(t); len(objs) != 0 {
				t.Errorf("cancelled upload left %v", objs)
			}
			if st.minio {
				if open := s.openUploads(t); len(open) != 0 {
					t.Errorf("cancelled upload left multipart uploads open: %v", open)
				}
			}
		})
	}
}
