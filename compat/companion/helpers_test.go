package companion

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	_ "github.com/upbroker/upbroker/drivers/all"
	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/internal/apitest"
	"github.com/upbroker/upbroker/internal/testenv"
	"github.com/upbroker/upbroker/ratelimit"
)

const (
	mib         = 1 << 20
	profileName = "images"
)

// keys are the API keys of the test principals; carol may only use
// another profile.
var apiKeys = map[string]string{
	"alice": "upb_alice-key-0123456789abcdef",
	"bob":   "upb_bob-key-0123456789abcdef00",
	"carol": "upb_carol-key-0123456789abcdef",
}

func testAuth(t *testing.T) auth.Authenticator {
	t.Helper()
	var cfg []config.APIKey
	for _, name := range []string{"alice", "bob", "carol"} {
		k := config.APIKey{Name: name, SHA256: auth.HashAPIKey(apiKeys[name])}
		if name == "carol" {
			k.Profiles = []string{"documents"}
		}
		cfg = append(cfg, k)
	}
	a, err := auth.New(config.Auth{Mode: auth.ModeAPIKey, APIKeys: cfg}, nil)
	if err != nil {
		t.Fatalf("auth: %v", err)
	}
	return a
}

func imagesProfile(backend string, max config.Size) config.Profile {
	return config.Profile{
		Backend:      backend,
		ContentTypes: []string{"image/png", "image/jpeg"},
		MaxSize:      max,
		Key:          "images/{principal}/{uuid}{ext}",
		Expires:      10 * time.Minute,
	}
}

// stack is a broker-like server on 127.0.0.1: the companion handler at
// /s3 and, for drivers that serve their own URLs, their handler at
// /v1/blob/<backend>/, both with their prefix stripped, as the broker
// mounts them.
type stack struct {
	URL     string
	backend string
	drv     drivers.Driver
	prof    config.Profile
	bucket  string
	minio   *testenv.MinIO
}

type stackOpts struct {
	limiter       ratelimit.Limiter
	onRateLimited func(reason string)
	auth          auth.Authenticator // default: testAuth
	metrics       Metrics
	events        events.Sink
}

func newStack(t *testing.T, backend, driver string, set drivers.Settings, prof config.Profile, o stackOpts) *stack {
	t.Helper()
	var companion, blob http.Handler
	mux := http.NewServeMux()
	mux.Handle("/s3/", http.StripPrefix("/s3", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		companion.ServeHTTP(w, r)
	})))
	mux.Handle("/v1/blob/"+backend+"/", http.StripPrefix("/v1/blob/"+backend, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		blob.ServeHTTP(w, r)
	})))
	srv := httptest.NewServer(apitest.Wrap(t, mux))
	t.Cleanup(srv.Close)
	d, err := drivers.Open(context.Background(), driver, set, drivers.Env{
		Backend: backend, BaseURL: srv.URL, SigningKey: bytes.Repeat([]byte("s"), 32),
	})
	if err != nil {
		t.Fatalf("open %s driver: %v", driver, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if hs, ok := d.(drivers.HTTPServer); ok {
		blob = hs.Handler()
	} else {
		blob = http.NotFoundHandler()
	}
	a := o.auth
	if a == nil {
		a = testAuth(t)
	}
	h, err := New(Options{
		Config:      config.Companion{Enabled: true, Path: "/s3", Profile: profileName},
		ProfileName: profileName, Profile: prof, Backend: backend, Driver: d, Bucket: set["bucket"],
		Auth: a, Limiter: o.limiter, OnRateLimited: o.onRateLimited,
		Metrics: o.metrics, Events: o.events, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("companion.New: %v", err)
	}
	companion = h
	return &stack{URL: srv.URL, backend: backend, drv: d, prof: prof, bucket: set["bucket"]}
}

// reply is one JSON answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) String() string { return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body)) }

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r, err)
	}
}

// errorText is the {"error": "..."} of a refusal, or "".
func (r reply) errorText() string {
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Error
}

// call makes one request to the companion routes as Uppy does: as who
// (an API key's owner, or "" for none), with a JSON body when body is
// not nil.
func (s *stack) call(t *testing.T, who, method, path string, body any) reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+"/s3"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if who != "" {
		key, ok := apiKeys[who]
		if !ok {
			key = who // a raw bad credential
		}
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", req.Method, req.URL, err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// paramsQuery is what @uppy/aws-s3 sends to /params.
func paramsQuery(filename, typ string, meta map[string]string) string {
	q := url.Values{"filename": {filename}, "type": {typ}}
	for k, v := range meta {
		q.Set("metadata["+k+"]", v)
	}
	return "/params?" + q.Encode()
}

type paramsReply struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Fields  map[string]string `json:"fields"`
	Headers map[string]string `json:"headers"`
	Expires int64             `json:"expires"`
}

// postForm uploads data as Uppy does: the fields in order, then the file
// as the part named "file".
func postForm(t *testing.T, p paramsReply, filename, typ string, data []byte) reply {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	names := make([]string, 0, len(p.Fields))
	for k := range p.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := mw.WriteField(k, p.Fields[k]); err != nil {
			t.Fatal(err)
		}
	}
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="file"; filename=%q`, filename)}
	h["Content-Type"] = []string{typ}
	fw, err := mw.CreatePart(h)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, p.URL, &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return do(t, req)
}

// putPart uploads one part to a signed URL and returns the ETag as Uppy
// reads it (quotes and all).
func putPart(t *testing.T, u string, data []byte) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, req)
	if r.status != http.StatusOK {
		t.Fatalf("PUT part: %s", r)
	}
	etag := r.header.Get("ETag")
	if etag == "" {
		t.Fatalf("PUT part: no ETag")
	}
	return etag
}

// pngBytes is a real PNG followed by pad random-looking bytes, so that
// content sniffing sees an image whatever the size.
func pngBytes(t *testing.T, pad int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range 64 {
		img.Set(i%8, i/8, color.RGBA{uint8(i * 3), uint8(i * 5), 200, 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	x := uint32(2463534242)
	for range pad {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out = append(out, byte(x))
	}
	return out
}

// sized returns a PNG of exactly n bytes (n must exceed the bare PNG).
func sized(t *testing.T, n int) []byte {
	t.Helper()
	base := pngBytes(t, 0)
	if n < len(base) {
		t.Fatalf("sized(%d): a PNG needs %d bytes", n, len(base))
	}
	return pngBytes(t, n-len(base))
}

func readAll(t *testing.T, d drivers.Driver, key string, n int64) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := d.ReadRange(ctx, key, 0, n+1)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func listKeys(t *testing.T, d drivers.Driver, prefix string) []string {
	t.Helper()
	l, ok := d.(drivers.Lister)
	if !ok {
		t.Fatalf("driver %T cannot list", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs, err := l.List(ctx, prefix)
	if err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	var keys []string
	for _, o := range objs {
		if !strings.HasPrefix(o.Key, ".") {
			keys = append(keys, o.Key)
		}
	}
	return keys
}
