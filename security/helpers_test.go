package security

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/internal/apptest"
	"github.com/upbroker/upbroker/internal/testenv"
)

// requestTimeout bounds one request: a deadline against a hung test, not
// an assertion on speed.
const requestTimeout = time.Minute

// statusLog remembers every 5xx that a broker answered, whatever the
// route, so a suite can prove that no hostile input reached a crash path.
type statusLog struct {
	mu     sync.Mutex
	failed []string
}

func (s *statusLog) add(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = append(s.failed, line)
}

func (s *statusLog) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.failed...)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// instance is one broker built as `upbroker serve` builds it, behind an
// httptest server on 127.0.0.1.
type instance struct {
	URL      string
	Config   *config.Config
	Backends map[string]drivers.Driver
	Logs     *testenv.LockedBuffer
	Errors   *statusLog
	keys     [][]byte
}

// startBroker builds a broker from the YAML that yaml returns for the
// server's public URL, the same way cmd/upbroker/serve.go does:
// config.Parse with the driver registry, then app.Build.
func startBroker(t *testing.T, yaml func(publicURL string) string) *instance {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + srv.Listener.Addr().String()
	text := yaml(publicURL)
	cfg := apptest.Parse(t, text)
	if len(cfg.TicketKeyBytes()) == 0 {
		t.Fatal("test config has no secrets.ticket_keys")
	}
	a := apptest.Build(t, cfg, apptest.Options{})
	in := &instance{URL: publicURL, Config: cfg, Logs: a.Logs, Errors: &statusLog{}}
	in.keys, in.Backends = a.TicketKeys, a.Backends
	h := a.Handler()
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.status >= 500 {
			in.Errors.add(fmt.Sprintf("%s %s → %d", r.Method, r.URL.Path, rec.status))
		}
	})
	srv.Config.ReadHeaderTimeout = 30 * time.Second
	srv.Config.MaxHeaderBytes = cfg.Server.MaxHeaderBytes
	srv.Start()
	t.Cleanup(srv.Close)
	return in
}

// randomHex is n random bytes, hex encoded.
func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// apiKey is a fresh key and its config digest.
type apiKey struct{ Key, Digest string }

func newAPIKey(t testing.TB) apiKey {
	t.Helper()
	k, d, err := auth.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	return apiKey{k, d}
}

// response is one answer, read whole.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// apiErr is the error body {"error": {...}} of the v1 API; Companion's
// routes answer {"error": "text", "message": "text"} instead.
type apiErr struct {
	Code, Message, Field string
	// Companion is set for Companion's shape.
	Companion bool
}

func (r *response) err() (apiErr, bool) {
	var raw struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(r.Body, &raw) != nil || len(raw.Error) == 0 {
		return apiErr{}, false
	}
	var s string
	if json.Unmarshal(raw.Error, &s) == nil {
		return apiErr{Message: s, Companion: true}, true
	}
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	}
	if json.Unmarshal(raw.Error, &e) != nil || e.Code == "" {
		return apiErr{}, false
	}
	return apiErr{Code: e.Code, Message: e.Message, Field: e.Field}, true
}

// client never follows redirects: a 307 from a download is an answer.
var client = &http.Client{
	Timeout:       requestTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func do(t testing.TB, req *http.Request) *response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL.Redacted(), err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// doRaw sends a request whose body the server may refuse before reading
// it (a 10 MB body): the body is written from another goroutine while the
// answer is read, so an early answer and the connection's close cannot
// race the way they can inside http.Client.
func doRaw(t testing.TB, req *http.Request) *response {
	t.Helper()
	conn, err := net.DialTimeout("tcp", req.URL.Host, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", req.URL.Host, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(requestTimeout))
	req.Close = true
	go func() { _ = req.Write(conn) }() // fails once the server hangs up: expected
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatalf("%s %s: read response: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body) // the server may close mid-way after the answer
	return &response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// pngBytes is a real PNG, so that a profile with sniff: true accepts it.
func pngBytes(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 3, 2))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// grant is the part of a 201 answer that the tests use.
type grant struct {
	ID      string `json:"id"`
	Key     string `json:"key"`
	Backend string `json:"backend"`
	Upload  *struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Fields  map[string]string `json:"fields"`
	} `json:"upload"`
	Multipart *struct {
		PartSize  int64  `json:"part_size"`
		PartCount int    `json:"part_count"`
		PartsURL  string `json:"parts_url"`
	} `json:"multipart"`
	CompleteURL string `json:"complete_url"`
}

// storeKeys lists every object in a backend.
func storeKeys(t testing.TB, d drivers.Driver) []string {
	t.Helper()
	l, ok := d.(drivers.Lister)
	if !ok {
		t.Fatalf("driver %T cannot list objects (drivers.Lister)", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	objs, err := l.List(ctx, "")
	if err != nil {
		t.Fatalf("list store: %v", err)
	}
	keys := make([]string, 0, len(objs))
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	sort.Strings(keys)
	return keys
}

// newRequest builds a request; target is a path on base, or an absolute
// URL (a store's signed URL).
func newRequest(t testing.TB, method, base, target string, body io.Reader) *http.Request {
	t.Helper()
	u := target
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		u = base + target
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatalf("request %s %s: %v", method, target, err)
	}
	return req
}

// grantRequest is a plain POST /v1/uploads with an API key.
func grantRequest(t testing.TB, base, key, body string) *http.Request {
	t.Helper()
	req := newRequest(t, http.MethodPost, base, "/v1/uploads", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return req
}

// pathEscapeKey escapes each segment of an object key for a URL path.
func pathEscapeKey(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
