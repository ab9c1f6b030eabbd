package companion

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/internal/testenv"
)

// minioStack opens driver ("minio" or "s3") on a fresh bucket of m.
func minioStack(t *testing.T, m *testenv.MinIO, driver string, max config.Size, edit ...func(*config.Profile)) *stack {
	t.Helper()
	return minioStackWith(t, m, driver, max, stackOpts{}, edit...)
}

// minioStackWith is minioStack with the handler's options.
func minioStackWith(t *testing.T, m *testenv.MinIO, driver string, max config.Size, o stackOpts, edit ...func(*config.Profile)) *stack {
	t.Helper()
	prof := imagesProfile("store", max)
	for _, e := range edit {
		e(&prof)
	}
	bucket := m.Bucket(t, fmt.Sprintf("companion-%s-%d", driver, time.Now().UnixNano()))
	set := drivers.Settings{"endpoint": m.Endpoint, "bucket": bucket, "access_key": m.AccessKey, "secret_key": m.SecretKey}
	if driver == "s3" {
		set["path_style"] = "true"
	}
	s := newStack(t, "store", driver, set, prof, o)
	s.minio = m
	return s
}

// openUploads lists the bucket's multipart uploads that were neither
// completed nor aborted.
func (s *stack) openUploads(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out []string
	for u := range s.minio.Client(t).ListIncompleteUploads(ctx, s.bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("list incomplete uploads: %v", u.Err)
		}
		out = append(out, u.Key+" "+u.UploadID)
	}
	return out
}

type created struct {
	Key      string `json:"key"`
	UploadID string `json:"uploadId"`
	Bucket   string `json:"bucket"`
}

func (s *stack) create(t *testing.T, who, filename, typ string) created {
	t.Helper()
	r := s.call(t, who, http.MethodPost, "/multipart", map[string]any{
		"filename": filename, "type": typ,
		// As Uppy sends file.meta: name and type, and null for unset fields.
		"metadata": map[string]any{"name": filename, "type": typ, "relativePath": nil, "caption": "hello"},
	})
	if r.status != http.StatusOK {
		t.Fatalf("create multipart: %s", r)
	}
	var c created
	r.decode(t, &c)
	if c.Key == "" || c.UploadID == "" {
		t.Fatalf("create multipart answer: %s", r)
	}
	return c
}

func uploadPath(c created, suffix, query string) string {
	q := url.Values{"key": {c.Key}}.Encode()
	if query != "" {
		q += "&" + query
	}
	return "/multipart/" + url.PathEscape(c.UploadID) + suffix + "?" + q
}

func TestMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	for _, driver := range []string{"minio", "s3"} {
		t.Run(driver, func(t *testing.T) {
			t.Run("post form", func(t *testing.T) { testPostForm(t, m, driver) })
			t.Run("multipart", func(t *testing.T) { testMultipart(t, m, driver) })
			t.Run("abort", func(t *testing.T) { testAbort(t, m, driver) })
			t.Run("too large", func(t *testing.T) { testTooLarge(t, m, driver) })
			t.Run("refusals", func(t *testing.T) { testRefusals(t, m, driver) })
			t.Run("sniff", func(t *testing.T) { testSniff(t, m, driver) })
		})
	}
}

// Uppy's single upload: /params, then a form POST straight to the bucket,
// held by the POST policy to the type and to 0..max_size bytes.
func testPostForm(t *testing.T, m *testenv.MinIO, driver string) {
	const max = 64 << 10
	s := minioStack(t, m, driver, max)
	tests := []struct {
		name   string
		size   int
		typ    string // type of the file part; the policy pins the field
		stored bool
	}{
		{"small", 500, "image/png", true},
		{"exactly max", max, "image/png", true},
		{"one byte over", max + 1, "image/png", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.call(t, "alice", http.MethodGet, paramsQuery("cat.png", "image/png", map[string]string{"caption": "a cat"}), nil)
			if r.status != http.StatusOK {
				t.Fatalf("params: %s", r)
			}
			var p paramsReply
			r.decode(t, &p)
			key := p.Fields["key"]
			if p.Method != "POST" || !strings.HasSuffix(p.URL, "/") || !strings.HasPrefix(key, "images/alice/") || p.Expires <= 0 {
				t.Fatalf("params answer: %s", r)
			}
			if p.Fields["Content-Type"] != "image/png" {
				t.Errorf("Content-Type field %q", p.Fields["Content-Type"])
			}
			data := sized(t, tc.size)
			up := postForm(t, p, "cat.png", tc.typ, data)
			ctx := context.Background()
			if !tc.stored {
				if up.status/100 == 2 {
					t.Fatalf("store took an upload one byte over max: %s", up)
				}
				if _, err := s.drv.Stat(ctx, key); err == nil {
					t.Fatalf("object %s exists after a refused upload", key)
				}
				return
			}
			if up.status/100 != 2 || up.header.Get("ETag") == "" {
				t.Fatalf("form POST: %s (ETag %q)", up, up.header.Get("ETag"))
			}
			info, err := s.drv.Stat(ctx, key)
			if err != nil {
				t.Fatalf("stat: %v", err)
			}
			if info.Size != int64(len(data)) || info.ContentType != "image/png" ||
				info.Metadata[MetaPrincipal] != "alice" || info.Metadata[MetaProfile] != profileName || info.Metadata["caption"] != "a cat" {
				t.Errorf("object: %+v", info)
			}
			if got := readAll(t, s.drv, key, int64(len(data))); !bytes.Equal(got, data) {
				t.Errorf("object bytes differ")
			}
		})
	}
}

// Uppy's multipart upload: create, sign (one by one as Uppy 5 and 6 do,
// and in a batch as older Uppy did), PUT, list, complete.
func testMultipart(t *testing.T, m *testenv.MinIO, driver string) {
	s := minioStack(t, m, driver, 12*mib)
	data := sized(t, 11*mib)
	chunks := [][]byte{data[:5*mib], data[5*mib : 10*mib], data[10*mib:]}
	c := s.create(t, "alice", "big.PNG", "image/png")
	if !strings.HasPrefix(c.Key, "images/alice/") || !strings.HasSuffix(c.Key, ".png") || c.Bucket != s.bucket {
		t.Fatalf("create: %+v", c)
	}
	var batch struct {
		PresignedUrls map[string]string `json:"presignedUrls"`
	}
	r := s.call(t, "alice", http.MethodGet, uploadPath(c, "/batch", "partNumbers=1,3"), nil)
	if r.status != http.StatusOK {
		t.Fatalf("batch: %s", r)
	}
	r.decode(t, &batch)
	if len(batch.PresignedUrls) != 2 || batch.PresignedUrls["1"] == "" || batch.PresignedUrls["3"] == "" {
		t.Fatalf("batch: %s", r)
	}
	var one struct {
		URL     string `json:"url"`
		Expires int64  `json:"expires"`
	}
	r = s.call(t, "alice", http.MethodGet, uploadPath(c, "/2", ""), nil)
	if r.status != http.StatusOK {
		t.Fatalf("sign part 2: %s", r)
	}
	r.decode(t, &one)
	if one.URL == "" || one.Expires <= 0 {
		t.Fatalf("sign part 2: %s", r)
	}
	etags := []string{
		putPart(t, batch.PresignedUrls["1"], chunks[0]),
		putPart(t, one.URL, chunks[1]),
		putPart(t, batch.PresignedUrls["3"], chunks[2]),
	}

	var listed []listedPart
	r = s.call(t, "alice", http.MethodGet, uploadPath(c, "", ""), nil)
	if r.status != http.StatusOK {
		t.Fatalf("list parts: %s", r)
	}
	r.decode(t, &listed)
	if len(listed) != 3 {
		t.Fatalf("list parts: %s", r)
	}
	for i, p := range listed {
		if p.PartNumber != i+1 || p.Size != int64(len(chunks[i])) || strings.Trim(p.ETag, `"`) != strings.Trim(etags[i], `"`) {
			t.Errorf("part %d listed as %+v (etag sent %s)", i+1, p, etags[i])
		}
	}

	// Quoted and bare ETags, as different Uppy versions send them.
	parts := []map[string]any{
		{"PartNumber": 1, "ETag": etags[0]},
		{"PartNumber": 2, "ETag": strings.Trim(etags[1], `"`)},
		{"PartNumber": 3, "ETag": etags[2]},
	}
	r = s.call(t, "alice", http.MethodPost, uploadPath(c, "/complete", ""), map[string]any{"parts": parts})
	if r.status != http.StatusOK {
		t.Fatalf("complete: %s", r)
	}
	var done struct{ Location, Key, Bucket string }
	r.decode(t, &done)
	if done.Key != c.Key || done.Bucket != s.bucket || !strings.HasSuffix(done.Location, "/"+s.bucket+"/"+c.Key) {
		t.Errorf("complete answer: %s", r)
	}
	info, err := s.drv.Stat(context.Background(), c.Key)
	if err != nil {
		t.Fatalf("stat: %v", err)
	}
	if info.Size != int64(len(data)) || info.ContentType != "image/png" || info.Metadata[MetaPrincipal] != "alice" ||
		info.Metadata["caption"] != "hello" || info.Metadata["name"] != "big.PNG" {
		t.Errorf("object: %+v", info)
	}
	if got := readAll(t, s.drv, c.Key, int64(len(data))); !bytes.Equal(got, data) {
		t.Errorf("object bytes differ")
	}
	if open := s.openUploads(t); len(open) != 0 {
		t.Errorf("uploads left open: %v", open)
	}
}

// DELETE aborts: no part, no object, no open upload remains; a second
// DELETE is not an error.
func testAbort(t *testing.T, m *testenv.MinIO, driver string) {
	s := minioStack(t, m, driver, 12*mib)
	c := s.create(t, "alice", "a.png", "image/png")
	r := s.call(t, "alice", http.MethodGet, uploadPath(c, "/1", ""), nil)
	if r.status != http.StatusOK {
		t.Fatalf("sign: %s", r)
	}
	var one struct{ URL string }
	r.decode(t, &one)
	putPart(t, one.URL, sized(t, 5*mib))
	if open := s.openUploads(t); len(open) != 1 {
		t.Fatalf("before abort, open uploads: %v", open)
	}
	for i := range 2 {
		r = s.call(t, "alice", http.MethodDelete, uploadPath(c, "", ""), nil)
		if r.status != http.StatusOK || strings.TrimSpace(string(r.body)) != "{}" {
			t.Fatalf("abort %d: %s", i+1, r)
		}
	}
	if open := s.openUploads(t); len(open) != 0 {
		t.Errorf("after abort, open uploads: %v", open)
	}
	if keys := listKeys(t, s.drv, ""); len(keys) != 0 {
		t.Errorf("after abort, objects: %v", keys)
	}
}

// With max_size 6 MiB and 5 MiB minimum parts, part 3 cannot be signed,
// and a 7 MiB upload in two parts is refused at complete and aborted.
func testTooLarge(t *testing.T, m *testenv.MinIO, driver string) {
	s := minioStack(t, m, driver, 6*mib)
	c := s.create(t, "alice", "a.png", "image/png")
	r := s.call(t, "alice", http.MethodGet, uploadPath(c, "/3", ""), nil)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("sign part 3: %s, want 413", r)
	}
	r = s.call(t, "alice", http.MethodGet, uploadPath(c, "/batch", "partNumbers=1,2,3"), nil)
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("batch 1,2,3: %s, want 413", r)
	}
	r = s.call(t, "alice", http.MethodGet, uploadPath(c, "/batch", "partNumbers=1,2"), nil)
	if r.status != http.StatusOK {
		t.Fatalf("batch 1,2: %s", r)
	}
	var batch struct {
		PresignedUrls map[string]string `json:"presignedUrls"`
	}
	r.decode(t, &batch)
	data := sized(t, 7*mib)
	e1 := putPart(t, batch.PresignedUrls["1"], data[:5*mib])
	e2 := putPart(t, batch.PresignedUrls["2"], data[5*mib:])
	r = s.call(t, "alice", http.MethodPost, uploadPath(c, "/complete", ""), map[string]any{"parts": []map[string]any{
		{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2},
	}})
	if r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("complete over max: %s, want 413", r)
	}
	if _, err := s.drv.Stat(context.Background(), c.Key); err == nil {
		t.Errorf("object %s exists after a refused complete", c.Key)
	}
	if open := s.openUploads(t); len(open) != 0 {
		t.Errorf("refused upload left open: %v", open)
	}
}

// Refusals on real uploads: another principal's key, bad syntax, bad part
// numbers and part lists. None may change the upload.
func testRefusals(t *testing.T, m *testenv.MinIO, driver string) {
	s := minioStack(t, m, driver, 12*mib)
	c := s.create(t, "alice", "a.png", "image/png")
	id := url.PathEscape(c.UploadID)
	key := url.QueryEscape(c.Key)
	bobs := s.create(t, "bob", "b.png", "image/png")
	completeBody := map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": "abc"}}}
	tests := []struct {
		name, who, method, path string
		body                    any
		status                  int
		errHas                  string
	}{
		{"sign: other principal", "bob", "GET", uploadPath(c, "/1", ""), nil, 403, "not made for you"},
		{"batch: other principal", "bob", "GET", uploadPath(c, "/batch", "partNumbers=1"), nil, 403, "not made for you"},
		{"list: other principal", "bob", "GET", uploadPath(c, "", ""), nil, 403, "not made for you"},
		{"complete: other principal", "bob", "POST", uploadPath(c, "/complete", ""), completeBody, 403, "not made for you"},
		{"abort: other principal", "bob", "DELETE", uploadPath(c, "", ""), nil, 403, "not made for you"},
		{"own key, other's upload id", "alice", "GET", "/multipart/" + url.PathEscape(bobs.UploadID) + "?key=" + key, nil, 404, "no such upload"},
		{"no credential", "", "GET", uploadPath(c, "/1", ""), nil, 401, "API key"},
		{"key: traversal", "alice", "GET", "/multipart/" + id + "/1?key=images/alice/../../x", nil, 400, "key"},
		{"key: absolute", "alice", "GET", "/multipart/" + id + "/1?key=/images/alice/x.png", nil, 400, "key"},
		{"key: twice", "alice", "GET", "/multipart/" + id + "/1?key=" + key + "&key=" + key, nil, 400, "key"},
		{"uploadId: quote", "alice", "GET", "/multipart/a%22b/1?key=" + key, nil, 400, "uploadId"},
		{"uploadId: newline", "alice", "GET", "/multipart/a%0Ab/1?key=" + key, nil, 400, "uploadId"},
		{"uploadId: too long", "alice", "GET", "/multipart/" + strings.Repeat("a", 1025) + "/1?key=" + key, nil, 400, "uploadId"},
		{"part 0", "alice", "GET", uploadPath(c, "/0", ""), nil, 400, "partNumber"},
		{"part 10001", "alice", "GET", uploadPath(c, "/10001", ""), nil, 400, "partNumber"},
		{"part not a number", "alice", "GET", uploadPath(c, "/x1", ""), nil, 400, "partNumber"},
		{"part 01", "alice", "GET", uploadPath(c, "/01", ""), nil, 400, "partNumber"},
		{"part beyond max size", "alice", "GET", uploadPath(c, "/4", ""), nil, 413, "beyond"},
		{"batch: empty", "alice", "GET", uploadPath(c, "/batch", ""), nil, 400, "partNumbers"},
		{"batch: junk", "alice", "GET", uploadPath(c, "/batch", "partNumbers=1,x"), nil, 400, "partNumbers"},
		{"complete: no parts", "alice", "POST", uploadPath(c, "/complete", ""), map[string]any{"parts": []any{}}, 400, "parts"},
		{"complete: part twice", "alice", "POST", uploadPath(c, "/complete", ""), map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": "a"}, {"PartNumber": 1, "ETag": "a"}}}, 400, "twice"},
		{"complete: no etag", "alice", "POST", uploadPath(c, "/complete", ""), map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": ""}}}, 400, "parts[0].ETag"},
		{"complete: part not uploaded", "alice", "POST", uploadPath(c, "/complete", ""), completeBody, 400, "parts[0]: part 1 has not been uploaded"},
		{"create: type", "alice", "POST", "/multipart", map[string]any{"filename": "a.svg", "type": "image/svg+xml"}, 415, "image/svg+xml"},
		{"create: no filename", "alice", "POST", "/multipart", map[string]any{"type": "image/png"}, 400, "filename"},
		{"create: reserved metadata", "alice", "POST", "/multipart", map[string]any{"filename": "a.png", "type": "image/png", "metadata": map[string]any{"upbrokerprofile": "x"}}, 400, "metadata.upbrokerprofile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.call(t, tc.who, tc.method, tc.path, tc.body)
			if r.status != tc.status || !strings.Contains(r.errorText(), tc.errHas) {
				t.Fatalf("got %s, want %d with %q", r, tc.status, tc.errHas)
			}
		})
	}
	// Alice's upload is still there, untouched, and still hers to finish.
	open := s.openUploads(t)
	if len(open) != 2 {
		t.Fatalf("open uploads after refusals: %v", open)
	}
	r := s.call(t, "alice", http.MethodDelete, uploadPath(c, "", ""), nil)
	if r.status != http.StatusOK {
		t.Fatalf("abort: %s", r)
	}
}

// With sniff on, an assembled object whose bytes are not what its type
// says is deleted and refused (422); a real PNG passes.
func testSniff(t *testing.T, m *testenv.MinIO, driver string) {
	s := minioStack(t, m, driver, 12*mib, func(p *config.Profile) { p.Sniff = true })
	tests := []struct {
		name   string
		data   []byte
		status int
	}{
		{"png", sized(t, 4096), http.StatusOK},
		{"html as png", []byte("<!DOCTYPE html><html><script>alert(1)</script></html>"), http.StatusUnprocessableEntity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := s.create(t, "alice", "x.png", "image/png")
			r := s.call(t, "alice", http.MethodGet, uploadPath(c, "/1", ""), nil)
			var one struct{ URL string }
			r.decode(t, &one)
			etag := putPart(t, one.URL, tc.data)
			r = s.call(t, "alice", http.MethodPost, uploadPath(c, "/complete", ""), map[string]any{"parts": []map[string]any{{"PartNumber": 1, "ETag": etag}}})
			if r.status != tc.status {
				t.Fatalf("complete: %s, want %d", r, tc.status)
			}
			_, err := s.drv.Stat(context.Background(), c.Key)
			if exists := err == nil; exists != (tc.status == http.StatusOK) {
				t.Errorf("object exists: %t after %s", exists, r)
			}
		})
	}
}
