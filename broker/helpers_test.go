package broker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker"
	"github.com/upbroker/upbroker/broker/ticket"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/file"
	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/internal/apitest"
	"github.com/upbroker/upbroker/ratelimit"
)

var ticketKey = []byte("test-ticket-key-0123456789abcdef")

// headerAuth is a real Authenticator for tests: X-Test-User names the
// principal; "bad" is refused, "down" is an unavailable provider, and no
// header is anonymous.
type headerAuth struct{}

func (headerAuth) Authenticate(r *http.Request) (auth.Principal, error) {
	switch u := r.Header.Get("X-Test-User"); u {
	case "":
		return auth.Anonymous, nil
	case "bad":
		return auth.Principal{}, fmt.Errorf("%w: bad test credential", auth.ErrUnauthorized)
	case "down":
		return auth.Principal{}, fmt.Errorf("%w: test provider down", auth.ErrUnavailable)
	case "docs-only":
		return auth.Principal{ID: u, Profiles: []string{"docs"}}, nil
	default:
		return auth.Principal{ID: u}, nil
	}
}

type recorder struct {
	mu sync.Mutex
	ev []events.Event
}

func (r *recorder) Publish(e events.Event) { r.mu.Lock(); r.ev = append(r.ev, e); r.mu.Unlock() }
func (r *recorder) types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.ev {
		out = append(out, string(e.Type)+":"+e.Reason)
	}
	return out
}

type harness struct {
	t      testing.TB
	srv    *httptest.Server
	b      *broker.Broker
	local  *file.Driver
	mem    *memDriver
	events *recorder
	opts   broker.Options
}

func testConfig() *config.Config {
	return &config.Config{
		Server: config.Server{PublicURL: "", CORS: config.CORS{AllowedOrigins: []string{"http://app.example"}}, DemoPage: true},
		Profiles: map[string]config.Profile{
			"images": {Backend: "local", ContentTypes: []string{"image/png", "image/jpeg"}, MaxSize: 1 << 20,
				Key: "images/{principal}/{uuid}{ext}", Sniff: true},
			"docs":   {Backend: "local", ContentTypes: []string{"text/*", "application/pdf"}, MaxSize: 100 << 10, Key: "docs/{principal}/{date}/{uuid}{ext}"},
			"public": {Backend: "local", ContentTypes: []string{"image/*"}, MaxSize: 1 << 20, Key: "pub/{uuid}{ext}", PublicRead: true},
			"form":   {Backend: "local", ContentTypes: []string{"text/plain"}, MaxSize: 1 << 10, Key: "form/{uuid}{ext}", Method: "post"},
			"big": {Backend: "mem", ContentTypes: []string{"application/octet-stream"}, MaxSize: 1 << 30, Key: "big/{uuid}{ext}",
				MultipartThreshold: 10 << 20, PartSize: 1 << 20},
		},
		DefaultProfile: "images",
	}
}

// newHarness starts an httptest server first, because the file driver's
// URLs point back at it, then opens the real file driver and the broker.
func newHarness(t testing.TB, edit ...func(*broker.Options)) *harness {
	t.Helper()
	h := &harness{t: t, events: &recorder{}}
	var handler atomic.Pointer[http.Handler]
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
	t.Cleanup(h.srv.Close)
	d, err := drivers.Open(context.Background(), "file", drivers.Settings{"path": t.TempDir()}, drivers.Env{
		Backend: "local", BaseURL: h.srv.URL, SigningKey: ticket.Derive(ticketKey, "backend:local"),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.local = d.(*file.Driver)
	h.mem = newMem()
	cfg := testConfig()
	cfg.Server.PublicURL = h.srv.URL
	h.opts = broker.Options{
		Config: cfg, Backends: map[string]drivers.Driver{"local": h.local, "mem": h.mem},
		TicketKeys: [][]byte{ticketKey}, Auth: headerAuth{}, Events: h.events, Logger: slog.New(slog.DiscardHandler),
	}
	for _, e := range edit {
		e(&h.opts)
	}
	h.b, err = broker.New(h.opts)
	if err != nil {
		t.Fatal(err)
	}
	// Every exchange of every broker test is checked against the OpenAPI
	// document, so the document cannot drift from the code.
	hh := apitest.Wrap(t, h.b.Handler())
	handler.Store(&hh)
	return h
}

type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

type apiErr struct {
	Error struct{ Code, Message, Field string } `json:"error"`
}

func (r resp) err(t testing.TB) apiErr {
	var e apiErr
	r.json(t, &e)
	return e
}

func (h *harness) do(method, url string, body io.Reader, hdr map[string]string) resp {
	h.t.Helper()
	if strings.HasPrefix(url, "/") {
		url = h.srv.URL + url
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := cl.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, b}
}

func (h *harness) postJSON(path string, body any, user string) resp {
	h.t.Helper()
	var r io.Reader
	switch v := body.(type) {
	case string:
		r = strings.NewReader(v)
	case []byte:
		r = bytes.NewReader(v)
	case nil:
	default:
		b, _ := json.Marshal(v)
		r = bytes.NewReader(b)
	}
	hdr := map[string]string{"Content-Type": "application/json"}
	if user != "" {
		hdr["X-Test-User"] = user
	}
	return h.do(http.MethodPost, path, r, hdr)
}

type grant struct {
	ID, Key, Backend, Profile string
	ExpiresAt                 time.Time `json:"expires_at"`
	Upload                    *struct {
		Method, URL     string
		Headers, Fields map[string]string
	}
	Multipart *struct {
		PartSize  int64  `json:"part_size"`
		PartCount int    `json:"part_count"`
		PartsURL  string `json:"parts_url"`
	}
	Enforced    map[string]string
	CompleteURL string `json:"complete_url"`
}

func (h *harness) create(req map[string]any, user string) grant {
	h.t.Helper()
	r := h.postJSON("/v1/uploads", req, user)
	if r.Status != http.StatusCreated {
		h.t.Fatalf("create %v: %d %s", req, r.Status, r.Body)
	}
	var g grant
	r.json(h.t, &g)
	return g
}

// put sends data to a grant's URL with the granted headers.
func (h *harness) put(g grant, data []byte) resp {
	h.t.Helper()
	return h.do(g.Upload.Method, g.Upload.URL, bytes.NewReader(data), g.Upload.Headers)
}

// objects lists what the file store holds.
func (h *harness) objects() []string {
	h.t.Helper()
	l, err := h.local.List(context.Background(), "")
	if err != nil {
		h.t.Fatal(err)
	}
	var keys []string
	for _, o := range l {
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	return keys
}

func (h *harness) assertEmpty() {
	h.t.Helper()
	if o := h.objects(); len(o) != 0 {
		h.t.Fatalf("store must be empty, holds %v", o)
	}
}

func wantErr(t testing.TB, r resp, status int, code, field string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d: %s", r.Status, status, r.Body)
	}
	e := r.err(t)
	if e.Error.Code != code || (field != "-" && e.Error.Field != field) || e.Error.Message == "" {
		t.Fatalf("error %+v, want code %q field %q", e.Error, code, field)
	}
}

// memDriver is an in-memory store with multipart support, for the logic
// that the file driver does not have (multipart, failing stores). Its URLs
// are not served; tests put bytes in with putPart/putObject.
type memDriver struct {
	mu      sync.Mutex
	objs    map[string]drivers.ObjectInfo
	data    map[string][]byte
	uploads map[string]map[int][]byte
	meta    map[string]drivers.Constraints
	fail    error // returned by every call when set
	n       int
}

func newMem() *memDriver {
	return &memDriver{objs: map[string]drivers.ObjectInfo{}, data: map[string][]byte{}, uploads: map[string]map[int][]byte{}, meta: map[string]drivers.Constraints{}}
}

func (m *memDriver) Capabilities() drivers.Capabilities {
	e := drivers.Enforced{Size: drivers.BySignature, ContentType: drivers.BySignature, Checksum: drivers.AfterUpload, NoOverwrite: drivers.NotEnforced}
	return drivers.Capabilities{Put: e, Multipart: true, MinPartSize: 1 << 20, MaxParts: 10000}
}

func (m *memDriver) failing() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.fail
}

func (m *memDriver) PresignPut(_ context.Context, key string, c drivers.Constraints) (drivers.Grant, error) {
	if err := m.failing(); err != nil {
		return drivers.Grant{}, err
	}
	m.mu.Lock()
	m.meta[key] = c
	m.mu.Unlock()
	return drivers.Grant{Method: "PUT", URL: "mem://" + key, Headers: map[string]string{"Content-Type": c.ContentType}, ExpiresAt: time.Now().Add(c.Expires)}, nil
}
func (m *memDriver) PresignGet(_ context.Context, key string, o drivers.GetOptions) (drivers.Grant, error) {
	return drivers.Grant{Method: "GET", URL: "mem://" + key + "?get", ExpiresAt: time.Now().Add(o.Expires)}, m.failing()
}
func (m *memDriver) Stat(_ context.Context, key string) (drivers.ObjectInfo, error) {
	if err := m.failing(); err != nil {
		return drivers.ObjectInfo{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return o, drivers.ErrNotFound
	}
	return o, nil
}
func (m *memDriver) ReadRange(_ context.Context, key string, off, n int64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.data[key]
	if !ok {
		return nil, drivers.ErrNotFound
	}
	if off >= int64(len(d)) {
		return nil, nil
	}
	return bytes.Clone(d[off:min(int64(len(d)), off+n)]), nil
}
func (m *memDriver) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	delete(m.data, key)
	return nil
}
func (m *memDriver) Ping(context.Context) error { return m.failing() }
func (m *memDriver) Close() error               { return nil }

func (m *memDriver) CreateMultipart(_ context.Context, key string, c drivers.Constraints) (string, error) {
	if err := m.failing(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n++
	id := fmt.Sprintf("up-%d", m.n)
	m.uploads[id] = map[int][]byte{}
	m.meta[key] = c
	return id, nil
}
func (m *memDriver) PresignPart(_ context.Context, key, id string, part int, size int64, exp time.Duration) (drivers.Grant, error) {
	return drivers.Grant{Method: "PUT", URL: fmt.Sprintf("mem://%s?upload=%s&part=%d&size=%d", key, id, part, size), ExpiresAt: time.Now().Add(exp)}, nil
}
func (m *memDriver) putPart(id string, n int, p []byte) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.uploads[id][n] = p
	return fmt.Sprintf(`"etag-%d-%d"`, n, len(p))
}
func (m *memDriver) ListParts(_ context.Context, key, id string) ([]drivers.Part, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	up, ok := m.uploads[id]
	if !ok {
		return nil, fmt.Errorf("mem: %w", drivers.ErrNotFound)
	}
	var out []drivers.Part
	for n, p := range up {
		out = append(out, drivers.Part{Number: n, ETag: fmt.Sprintf("etag-%d-%d", n, len(p)), Size: int64(len(p))})
	}
	return out, nil
}
func (m *memDriver) CompleteMultipart(_ context.Context, key, id string, parts []drivers.Part) (drivers.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	up, ok := m.uploads[id]
	if !ok {
		return drivers.ObjectInfo{}, drivers.ErrNotFound
	}
	var all []byte
	for _, p := range parts {
		all = append(all, up[p.Number]...)
	}
	c := m.meta[key]
	info := drivers.ObjectInfo{Key: key, Size: int64(len(all)), ContentType: c.ContentType, ETag: "mp", Metadata: c.Metadata}
	m.objs[key], m.data[key] = info, all
	delete(m.uploads, id)
	return info, nil
}
func (m *memDriver) AbortMultipart(_ context.Context, key, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.uploads[id]; !ok {
		return drivers.ErrNotFound
	}
	delete(m.uploads, id)
	return nil
}

// fixedLimiter answers every Take the same.
type fixedLimiter struct {
	d   ratelimit.Decision
	err error
}

func (l fixedLimiter) Take(context.Context, string, int64) (ratelimit.Decision, error) {
	return l.d, l.err
}
func (l fixedLimiter) Close() error { return nil }

var errStore = errors.New("redis down")
