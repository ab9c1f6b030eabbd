package e2e

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/upbroker/upbroker/internal/testenv"
)

type uppyFile struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	Key       string `json:"key"`
	Location  string `json:"location"`
	Multipart bool   `json:"multipart"`
}

type uppySummary struct {
	Version    string     `json:"version"`
	Successful []uppyFile `json:"successful"`
	Failed     []struct {
		Name  string `json:"name"`
		Error string `json:"error"`
	} `json:"failed"`
	Errors []struct {
		Name  string `json:"name"`
		Error string `json:"error"`
	} `json:"errors"`
}

// Uppy's @uppy/aws-s3, unchanged but for the URL, uploads through
// upbroker's Companion endpoints to MinIO: a small file as a POST form and
// a 12 MiB file as a multipart upload, with 6.x (companionEndpoint) and 5.x
// (endpoint).
func TestUppy(t *testing.T) {
	for _, major := range []string{"6", "5"} {
		t.Run("v"+major, func(t *testing.T) {
			bundle := testenv.CachePath("npm", "uppy"+major, "node_modules", "uppy", "dist", "uppy.min.mjs")
			if _, err := os.Stat(bundle); err != nil {
				testenv.Unavailable(t, "Uppy %s.x bundle missing (%v)", major, err)
			}
			s := newStack(t, minioYAML, stackOptions{minio: true})
			s.run(t, chromedp.Navigate(s.URL+"/test/uppy/index.html?v="+major))
			s.waitFor(t, "the Uppy page", `document.body.dataset.ready === "true"`)

			tests := []struct {
				name      string
				data      []byte
				multipart bool
			}{
				{"small.png", makePNG(t, 40, 30, 5), false},
				{"big.png", append(makePNG(t, 8, 8, 6), randomBytes(t, 12<<20)...), true},
			}
			for _, tc := range tests {
				s.pick(t, writeFile(t, tc.name, tc.data))
				sum := eval[uppySummary](t, s, fmt.Sprintf(`window.uppyUpload(%t)`, tc.multipart))
				if len(sum.Successful) != 1 || len(sum.Failed) != 0 {
					t.Fatalf("%s: Uppy %s: %+v", tc.name, sum.Version, sum)
				}
				f := sum.Successful[0]
				if f.Multipart != tc.multipart {
					t.Errorf("%s: multipart %t, want %t", tc.name, f.Multipart, tc.multipart)
				}
				if f.Key == "" {
					t.Fatalf("%s: Uppy reports no key: %+v", tc.name, f)
				}
				got, info := s.readObject(t, "minio", f.Key, int64(len(tc.data)))
				if !bytes.Equal(got, tc.data) {
					t.Errorf("%s: object %s holds %d bytes that differ from the %d sent", tc.name, f.Key, len(got), len(tc.data))
				}
				if info.ContentType != "image/png" {
					t.Errorf("%s: content type %q", tc.name, info.ContentType)
				}
			}
			if objs := s.objects(t); len(objs) != len(tests) {
				t.Errorf("store holds %v, want %d objects", objs, len(tests))
			}
			if open := s.openUploads(t); len(open) != 0 {
				t.Errorf("multipart uploads left open: %v", open)
			}
		})
	}
}
