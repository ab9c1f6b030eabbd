// Package drivertest is the conformance suite that every driver passes.
//
// A driver's test calls Run with a Harness that opens the driver against a
// real store (MinIO, fake-gcs-server, Azurite, a temporary folder). The
// suite uploads with net/http exactly as a browser would, using the headers
// and fields of each grant, and checks what the store then holds.
//
// Where a driver's Capabilities say that the store does NOT enforce a
// constraint (AfterUpload or NotEnforced), the suite still runs the check and
// asserts that the store ACCEPTED the bad upload, logging it: this proves
// that the broker's after-upload check is needed, and keeps the Capabilities
// honest. Nothing is skipped.
package drivertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// Harness tells the suite how to reach one driver.
type Harness struct {
	// Open returns a driver on an empty (or at least private) bucket or
	// folder. It is called once per Run; the suite closes the driver.
	//
	// A driver whose URLs point back at the broker (drivers.HTTPServer) must
	// be reachable at the Env.BaseURL it was opened with: start an
	// httptest server on 127.0.0.1 first, open the driver with its URL, then
	// mount d.Handler() under /v1/blob/<backend>/ with http.StripPrefix.
	Open func(t *testing.T) drivers.Driver
	// HTTPClient uploads and downloads; http.DefaultClient when nil.
	HTTPClient *http.Client
	// SignatureParams are the query parameters that carry a signature, each
	// of which the tamper check flips in turn. Defaults to the ones of S3,
	// GCS, Azure SAS and the file driver; the check fails if a grant carries
	// none of them.
	SignatureParams []string
	// Prefix under which the suite writes (a unique one is added below it).
	Prefix string
}

// DefaultSignatureParams are the signature parameters of the known stores.
var DefaultSignatureParams = []string{"X-Amz-Signature", "X-Goog-Signature", "sig", "signature", "ub-sig"}

// suite is the state of one Run.
type suite struct {
	h      Harness
	d      drivers.Driver
	caps   drivers.Capabilities
	client *http.Client
	prefix string

	mu   sync.Mutex
	keep map[string]int64 // objects the suite means to leave, with their sizes
}

// Run runs every check against the driver that h opens.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("drivertest: Harness.Open is required")
	}
	s := &suite{h: h, client: h.HTTPClient, keep: map[string]int64{}}
	if s.client == nil {
		s.client = http.DefaultClient
	}
	if len(s.h.SignatureParams) == 0 {
		s.h.SignatureParams = DefaultSignatureParams
	}
	s.prefix = strings.Trim(h.Prefix, "/")
	if s.prefix != "" {
		s.prefix += "/"
	}
	s.prefix += "drivertest/" + randHex(6) + "/"
	s.d = h.Open(t)
	t.Cleanup(func() {
		if err := s.d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	s.caps = s.d.Capabilities()
	t.Logf("capabilities: %+v", s.caps)

	if err := s.d.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	// The group returns only when its parallel subtests are done, so the
	// final listing sees everything they left.
	t.Run("group", func(t *testing.T) {
		t.Run("PutRoundTrip", s.putRoundTrip)
		t.Run("PutWrongContentType", s.putWrongType)
		t.Run("PutWrongLength", s.putWrongLength)
		t.Run("PutOverwrite", s.putOverwrite)
		t.Run("PutExpired", s.putExpired)
		t.Run("PutTamperedSignature", s.putTampered)
		t.Run("PutChecksum", s.putChecksum)
		t.Run("GetAndRange", s.getAndRange)
		t.Run("DeleteThenStat", s.deleteThenStat)
		t.Run("ReadRange", s.readRange)
		t.Run("Multipart", s.multipart)
		t.Run("PostPolicy", s.postPolicy)
	})

	if l, ok := s.d.(drivers.Lister); ok {
		t.Run("NothingLeftBehind", func(t *testing.T) { s.nothingLeft(t, l) })
	} else {
		t.Log("driver is not a drivers.Lister: the final listing check cannot run; each check still asserted its own key is absent")
	}
	t.Cleanup(func() {
		for k := range s.keep {
			_ = s.d.Delete(context.Background(), k)
		}
	})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// key returns a fresh key for one check.
func (s *suite) key(name string) string {
	return s.prefix + name + "-" + randHex(4) + ".bin"
}

func (s *suite) kept(key string, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keep[key] = size
}

func (s *suite) dropped(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keep, key)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func payload(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func sum256(b []byte) string {
	h := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(h[:])
}

// response is what the store answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) ok() bool { return r.status >= 200 && r.status < 300 }

func (r response) String() string {
	b := r.body
	if len(b) > 300 {
		b = b[:300]
	}
	return fmt.Sprintf("%d %q", r.status, b)
}

// do sends one request. length < 0 leaves Content-Length as net/http sets
// it from the body; otherwise it declares that length.
func (s *suite) do(t *testing.T, method, rawURL string, headers map[string]string, body []byte, length int64) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx(t), method, rawURL, rd)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, rawURL, err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if length >= 0 {
		req.ContentLength = length
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// A store may hang up on a body longer than declared; that is a
		// refusal too.
		t.Logf("%s: transport error: %v", method, err)
		return response{status: 0}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (s *suite) put(t *testing.T, g drivers.Grant, body []byte) response {
	t.Helper()
	if g.Method != http.MethodPut {
		t.Fatalf("PresignPut grant method = %q, want PUT", g.Method)
	}
	return s.do(t, g.Method, g.URL, g.Headers, body, -1)
}

func (s *suite) presignPut(t *testing.T, key string, c drivers.Constraints) drivers.Grant {
	t.Helper()
	if c.Expires == 0 {
		c.Expires = 5 * time.Minute
	}
	g, err := s.d.PresignPut(ctx(t), key, c)
	if err != nil {
		t.Fatalf("PresignPut(%q): %v", key, err)
	}
	if g.URL == "" {
		t.Fatalf("PresignPut(%q): empty URL", key)
	}
	if _, ok := g.Headers["Content-Length"]; ok {
		t.Errorf("grant headers must never hold Content-Length: %v", g.Headers)
	}
	return g
}

// mustUpload presigns and uploads body, failing the test unless accepted.
func (s *suite) mustUpload(t *testing.T, key string, body []byte, c drivers.Constraints) {
	t.Helper()
	c.Size = int64(len(body))
	if c.ContentType == "" {
		c.ContentType = "application/octet-stream"
	}
	if r := s.put(t, s.presignPut(t, key, c), body); !r.ok() {
		t.Fatalf("upload of %q refused: %v", key, r)
	}
	s.kept(key, int64(len(body)))
}

// absent asserts that key holds no object.
func (s *suite) absent(t *testing.T, key string) {
	t.Helper()
	info, err := s.d.Stat(ctx(t), key)
	if err == nil {
		t.Errorf("Stat(%q) found an object (size %d) where none may be", key, info.Size)
		return
	}
	if !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("Stat(%q) = %v, want an error wrapping drivers.ErrNotFound", key, err)
	}
}

// expectEnforced checks the outcome of a bad upload against what the driver
// claims. refused tells whether the store refused it.
func (s *suite) expectEnforced(t *testing.T, what string, e drivers.Enforcement, r response, key string) {
	t.Helper()
	switch e {
	case drivers.BySignature:
		if r.ok() {
			t.Errorf("%s: store accepted it (%v) although Capabilities say %q", what, r, e)
			s.kept(key, -1) // so the final listing does not blame another check
			return
		}
		if r.status != 0 && (r.status < 400 || r.status >= 500) {
			t.Errorf("%s: store answered %v, want a 4xx refusal", what, r)
		}
		s.absent(t, key)
	default:
		if !r.ok() {
			t.Errorf("%s: store refused it (%v) although Capabilities say %q: mark it %q", what, r, e, drivers.BySignature)
			return
		}
		t.Logf("%s: the store accepted it, as Capabilities say (%q): the broker must check this after upload", what, e)
		s.kept(key, -1)
	}
}

func (s *suite) putRoundTrip(t *testing.T) {
	t.Parallel()
	key := s.key("roundtrip")
	body := payload(1000)
	meta := map[string]string{"album": "holidays", "upbrokerprincipal": "u-42"}
	g := s.presignPut(t, key, drivers.Constraints{ContentType: "image/png", Size: int64(len(body)), Metadata: meta, NoOverwrite: true})
	if g.ExpiresAt.IsZero() || time.Until(g.ExpiresAt) <= 0 || time.Until(g.ExpiresAt) > 6*time.Minute {
		t.Errorf("grant ExpiresAt = %v, want about 5 minutes from now", g.ExpiresAt)
	}
	if g.Enforced != s.caps.Put {
		t.Errorf("grant Enforced = %+v, want Capabilities().Put %+v", g.Enforced, s.caps.Put)
	}
	if r := s.put(t, g, body); !r.ok() {
		t.Fatalf("upload refused: %v", r)
	}
	s.kept(key, int64(len(body)))
	info, err := s.d.Stat(ctx(t), key)
	if err != nil {
		t.Fatalf("Stat after upload: %v", err)
	}
	if info.Size != int64(len(body)) || info.ContentType != "image/png" {
		t.Errorf("Stat = size %d type %q, want %d %q", info.Size, info.ContentType, len(body), "image/png")
	}
	if strings.Contains(info.ETag, `"`) {
		t.Errorf("Stat ETag %q still has quotes", info.ETag)
	}
	for k, v := range meta {
		if info.Metadata[k] != v {
			t.Errorf("Stat metadata[%q] = %q, want %q (all: %v)", k, info.Metadata[k], v, info.Metadata)
		}
	}
}

func (s *suite) putWrongType(t *testing.T) {
	t.Parallel()
	key := s.key("wrongtype")
	body := payload(100)
	g := s.presignPut(t, key, drivers.Constraints{ContentType: "image/png", Size: int64(len(body))})
	h := maps.Clone(g.Headers)
	h["Content-Type"] = "text/html"
	r := s.do(t, g.Method, g.URL, h, body, -1)
	s.expectEnforced(t, "wrong Content-Type", s.caps.Put.ContentType, r, key)
}

func (s *suite) putWrongLength(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		delta int
	}{{"OneByteOver", 1}, {"OneByteShort", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			key := s.key("wronglength")
			g := s.presignPut(t, key, drivers.Constraints{ContentType: "application/octet-stream", Size: 100})
			r := s.put(t, g, payload(100+tc.delta))
			s.expectEnforced(t, "length "+tc.name, s.caps.Put.Size, r, key)
		})
	}
}

func (s *suite) putOverwrite(t *testing.T) {
	t.Parallel()
	key := s.key("overwrite")
	first := payload(64)
	s.mustUpload(t, key, first, drivers.Constraints{NoOverwrite: true})
	second := payload(64)
	g := s.presignPut(t, key, drivers.Constraints{ContentType: "application/octet-stream", Size: 64, NoOverwrite: true})
	r := s.put(t, g, second)
	switch s.caps.Put.NoOverwrite {
	case drivers.BySignature:
		if r.ok() {
			t.Fatalf("overwrite accepted (%v) although Capabilities say %q", r, drivers.BySignature)
		}
		if r.status < 400 || r.status >= 500 {
			t.Errorf("overwrite answered %v, want 4xx (412 or 409)", r)
		}
		got, err := s.d.ReadRange(ctx(t), key, 0, 1<<20)
		if err != nil {
			t.Fatalf("ReadRange after refused overwrite: %v", err)
		}
		if !bytes.Equal(got, first) {
			t.Errorf("the refused overwrite changed the object")
		}
	default:
		if !r.ok() {
			t.Fatalf("overwrite refused (%v) although Capabilities say %q", r, s.caps.Put.NoOverwrite)
		}
		t.Logf("overwrite: the store accepted it, as Capabilities say (%q)", s.caps.Put.NoOverwrite)
	}
}

func (s *suite) putExpired(t *testing.T) {
	t.Parallel()
	key := s.key("expired")
	body := payload(10)
	g := s.presignPut(t, key, drivers.Constraints{ContentType: "application/octet-stream", Size: 10, Expires: time.Second})
	time.Sleep(2 * time.Second)
	r := s.put(t, g, body)
	if r.ok() {
		t.Fatalf("expired URL accepted: %v", r)
	}
	if r.status != 0 && (r.status < 400 || r.status >= 500) {
		t.Errorf("expired URL answered %v, want 4xx", r)
	}
	s.absent(t, key)
}

// flip changes one character of s inside its own alphabet (hex stays hex,
// base64 stays base64), so the store sees a well-formed but wrong signature.
func flip(s string) string {
	if s == "" {
		return "x"
	}
	b := []byte(s)
	i := len(b) / 2
	switch c := b[i]; {
	case c >= '0' && c <= '9':
		b[i] = '0' + (c-'0'+1)%10
	case c >= 'a' && c <= 'f' && strings.Trim(s, "0123456789abcdef") == "":
		b[i] = 'a' + (c-'a'+1)%6
	case c >= 'a' && c <= 'z':
		b[i] = 'a' + (c-'a'+1)%26
	case c >= 'A' && c <= 'Z':
		b[i] = 'A' + (c-'A'+1)%26
	default:
		b[i] = 'A'
	}
	return string(b)
}

func (s *suite) putTampered(t *testing.T) {
	t.Parallel()
	found := 0
	for _, p := range s.h.SignatureParams {
		key := s.key("tampered")
		g := s.presignPut(t, key, drivers.Constraints{ContentType: "application/octet-stream", Size: 10})
		u, err := url.Parse(g.URL)
		if err != nil {
			t.Fatalf("grant URL: %v", err)
		}
		q := u.Query()
		v := q.Get(p)
		if v == "" {
			continue
		}
		found++
		t.Run(p, func(t *testing.T) {
			q.Set(p, flip(v))
			u.RawQuery = q.Encode()
			r := s.do(t, g.Method, u.String(), g.Headers, payload(10), -1)
			if r.ok() {
				t.Fatalf("tampered %s accepted: %v", p, r)
			}
			if r.status != 0 && (r.status < 400 || r.status >= 500) {
				t.Errorf("tampered %s answered %v, want 4xx", p, r)
			}
			s.absent(t, key)
		})
	}
	if found == 0 {
		t.Fatalf("the grant URL carries none of the signature parameters %v; set Harness.SignatureParams", s.h.SignatureParams)
	}
}

func (s *suite) putChecksum(t *testing.T) {
	t.Parallel()
	body := payload(256)
	good := s.key("checksum-good")
	c := drivers.Constraints{ContentType: "application/octet-stream", Size: int64(len(body)), ChecksumSHA256: sum256(body)}
	if r := s.put(t, s.presignPut(t, good, c), body); !r.ok() {
		t.Fatalf("upload with the right checksum refused: %v", r)
	}
	s.kept(good, int64(len(body)))
	if s.caps.Put.Checksum == drivers.BySignature {
		info, err := s.d.Stat(ctx(t), good)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if info.ChecksumSHA256 != "" && info.ChecksumSHA256 != c.ChecksumSHA256 {
			t.Errorf("Stat ChecksumSHA256 = %q, want %q", info.ChecksumSHA256, c.ChecksumSHA256)
		}
	}

	bad := s.key("checksum-bad")
	c.ChecksumSHA256 = sum256(payload(256))
	r := s.put(t, s.presignPut(t, bad, c), body)
	s.expectEnforced(t, "checksum_sha256 mismatch", s.caps.Put.Checksum, r, bad)
}

func (s *suite) getAndRange(t *testing.T) {
	t.Parallel()
	key := s.key("get")
	body := payload(4096)
	s.mustUpload(t, key, body, drivers.Constraints{ContentType: "image/png"})
	g, err := s.d.PresignGet(ctx(t), key, drivers.GetOptions{Expires: 5 * time.Minute, Filename: "holiday photo.png"})
	if err != nil {
		t.Fatalf("PresignGet: %v", err)
	}
	if g.Method != "" && g.Method != http.MethodGet {
		t.Errorf("PresignGet method = %q, want GET", g.Method)
	}
	r := s.do(t, http.MethodGet, g.URL, g.Headers, nil, -1)
	if r.status != http.StatusOK || !bytes.Equal(r.body, body) {
		t.Fatalf("GET = %d with %d bytes, want 200 with the %d uploaded bytes", r.status, len(r.body), len(body))
	}
	if ct := r.header.Get("Content-Type"); ct != "image/png" {
		t.Errorf("GET Content-Type = %q, want image/png", ct)
	}
	h := maps.Clone(g.Headers)
	if h == nil {
		h = map[string]string{}
	}
	h["Range"] = "bytes=100-199"
	r = s.do(t, http.MethodGet, g.URL, h, nil, -1)
	if r.status != http.StatusPartialContent || !bytes.Equal(r.body, body[100:200]) {
		t.Errorf("Range GET = %d with %d bytes, want 206 with bytes 100-199", r.status, len(r.body))
	}
}

func (s *suite) deleteThenStat(t *testing.T) {
	t.Parallel()
	key := s.key("delete")
	s.mustUpload(t, key, payload(10), drivers.Constraints{})
	if err := s.d.Delete(ctx(t), key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	s.dropped(key)
	s.absent(t, key)
	if err := s.d.Delete(ctx(t), key); err != nil {
		t.Errorf("Delete of a missing object = %v, want nil", err)
	}
	if _, err := s.d.ReadRange(ctx(t), key, 0, 10); !errors.Is(err, drivers.ErrNotFound) {
		t.Errorf("ReadRange of a deleted object = %v, want drivers.ErrNotFound", err)
	}
}

func (s *suite) readRange(t *testing.T) {
	t.Parallel()
	key := s.key("readrange")
	body := payload(100)
	s.mustUpload(t, key, body, drivers.Constraints{})
	for _, tc := range []struct {
		name   string
		off, n int64
		want   []byte
	}{
		{"Head", 0, 10, body[:10]},
		{"Middle", 10, 20, body[10:30]},
		{"PastEnd", 90, 50, body[90:]},
		{"Whole", 0, 100, body},
	} {
		got, err := s.d.ReadRange(ctx(t), key, tc.off, tc.n)
		if err != nil {
			t.Errorf("%s: ReadRange(%d, %d): %v", tc.name, tc.off, tc.n, err)
			continue
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s: ReadRange(%d, %d) gave %d bytes, want %d matching ones", tc.name, tc.off, tc.n, len(got), len(tc.want))
		}
	}
}

func (s *suite) nothingLeft(t *testing.T, l drivers.Lister) {
	objs, err := l.List(ctx(t), s.prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", s.prefix, err)
	}
	got := map[string]int64{}
	for _, o := range objs {
		got[o.Key] = o.Size
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, size := range got {
		want, ok := s.keep[k]
		if !ok {
			t.Errorf("the store holds %q (%d bytes), which the suite never meant to keep", k, size)
		} else if want >= 0 && want != size {
			t.Errorf("List says %q has %d bytes, want %d", k, size, want)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.keep)) {
		if _, ok := got[k]; !ok {
			t.Errorf("List(%q) misses %q", s.prefix, k)
		}
	}
}

// form builds a multipart/form-data body of a POST grant's fields and the
// file, last, as browsers and S3 expect.
func form(t *testing.T, g drivers.Grant, contentType string, file []byte) (string, []byte) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, k := range slices.Sorted(maps.Keys(g.Fields)) {
		if err := mw.WriteField(k, g.Fields[k]); err != nil {
			t.Fatal(err)
		}
	}
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="file"; filename="upload.bin"`}
	h["Content-Type"] = []string{contentType}
	fw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(file)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), b.Bytes()
}

func (s *suite) postPolicy(t *testing.T) {
	pp, ok := s.d.(drivers.PostPresigner)
	if ok != s.caps.PostPolicy {
		t.Fatalf("Capabilities().PostPolicy = %v but implements drivers.PostPresigner = %v", s.caps.PostPolicy, ok)
	}
	if !ok {
		t.Log("PostPolicy: the driver has no POST policy (Capabilities().PostPolicy is false); nothing to check")
		return
	}
	t.Parallel()
	const maxSize = 2048
	for _, tc := range []struct {
		name string
		size int
	}{{"AtMax", maxSize}, {"OneByteOver", maxSize + 1}} {
		t.Run(tc.name, func(t *testing.T) {
			key := s.key("post")
			g, err := pp.PresignPost(ctx(t), key, drivers.Constraints{ContentType: "image/png", MaxSize: maxSize, Expires: 5 * time.Minute})
			if err != nil {
				t.Fatalf("PresignPost: %v", err)
			}
			if g.Method != http.MethodPost || len(g.Fields) == 0 {
				t.Fatalf("PresignPost grant = %s with %d fields, want POST with fields", g.Method, len(g.Fields))
			}
			body := payload(tc.size)
			ct, b := form(t, g, "image/png", body)
			h := maps.Clone(g.Headers)
			if h == nil {
				h = map[string]string{}
			}
			h["Content-Type"] = ct
			r := s.do(t, http.MethodPost, g.URL, h, b, -1)
			if tc.size <= maxSize {
				if !r.ok() {
					t.Fatalf("POST of %d bytes (max %d) refused: %v", tc.size, maxSize, r)
				}
				s.kept(key, int64(tc.size))
				info, err := s.d.Stat(ctx(t), key)
				if err != nil {
					t.Fatalf("Stat after POST: %v", err)
				}
				if info.Size != int64(tc.size) || info.ContentType != "image/png" {
					t.Errorf("Stat after POST = %d %q, want %d image/png", info.Size, info.ContentType, tc.size)
				}
				return
			}
			s.expectEnforced(t, "POST one byte over max", s.caps.Post.Size, r, key)
		})
	}
}
