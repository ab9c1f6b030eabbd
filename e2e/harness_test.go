package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/minio/minio-go/v7"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/internal/apitest"
	"github.com/upbroker/upbroker/internal/apptest"
	"github.com/upbroker/upbroker/internal/testenv"
)

// waitLimit bounds every wait on the browser or a server. It is a deadline
// against a hung test, not an assertion on speed: a slow machine passes.
const waitLimit = 3 * time.Minute

// stack is one broker behind an httptest server, its store, and a browser.
type stack struct {
	URL      string
	Backends map[string]drivers.Driver
	Browser  context.Context
	// Gate sits in front of the store's upload URLs (the file driver's
	// /v1/blob/ route, or the proxy in front of MinIO), so a test can hold
	// or fail chosen requests.
	Gate *gate

	dataDir string
	minio   *testenv.MinIO
	bucket  string
	mc      *minio.Client
}

// vars are what a test's YAML template can use.
type vars struct {
	PublicURL      string
	TicketKey      string
	DataDir        string
	MinIOEndpoint  string
	PublicEndpoint string
	AccessKey      string
	SecretKey      string
	Bucket         string
}

type stackOptions struct {
	minio bool
}

// newStack starts MinIO when asked, builds the broker from yamlTmpl exactly
// as upbroker serve does (config.Parse, app.Build), serves it
// on 127.0.0.1 together with the test pages, and starts Chromium.
func newStack(t *testing.T, yamlTmpl string, o stackOptions) *stack {
	t.Helper()
	browser := testenv.Chromium(t)
	s := &stack{Browser: browser, dataDir: t.TempDir()}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	v := vars{TicketKey: hex.EncodeToString(key), DataDir: s.dataDir}

	srv := httptest.NewUnstartedServer(nil)
	v.PublicURL = "http://" + srv.Listener.Addr().String()
	s.URL = v.PublicURL

	if o.minio {
		s.minio = testenv.StartMinIO(t)
		s.bucket = s.minio.Bucket(t, "uploads")
		s.mc = s.minio.Client(t)
		target, err := url.Parse(s.minio.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		// The proxy keeps the Host that the browser used: the driver signs
		// URLs for public_endpoint (the proxy), and MinIO checks the
		// signature against the Host it receives.
		rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		}}
		s.Gate = newGate(rp)
		proxy := httptest.NewServer(s.Gate)
		t.Cleanup(proxy.Close)
		v.MinIOEndpoint = s.minio.Endpoint
		v.PublicEndpoint = proxy.URL
		v.AccessKey, v.SecretKey, v.Bucket = s.minio.AccessKey, s.minio.SecretKey, s.bucket
	}

	cfg := apptest.Render(t, yamlTmpl, v)

	a := apptest.Build(t, cfg, apptest.Options{})
	s.Backends = a.Backends

	// Everything the broker answers, the browser's traffic included, is
	// checked against the OpenAPI document. The gate stays outside the
	// check: its made-up store failures are not the broker's answers.
	checked := apitest.Wrap(t, a.Handler())
	api := checked
	if !o.minio {
		// The file driver's upload URLs point at the broker itself.
		s.Gate = newGate(checked)
		api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/v1/blob/") {
				s.Gate.ServeHTTP(w, r)
				return
			}
			checked.ServeHTTP(w, r)
		})
	}
	srv.Config.Handler = testPages(t, api)
	srv.Start()
	t.Cleanup(srv.Close)
	// Runs before the servers close (cleanups run last-in first-out):
	// a request still held would keep Close waiting.
	t.Cleanup(s.Gate.Release)
	return s
}

// testPages serves the Uppy test pages and bundles under /test/, and the
// broker everywhere else: one origin, as an application would have it.
func testPages(t *testing.T, api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/test/uppy/", http.StripPrefix("/test/uppy/",
		http.FileServer(http.Dir(filepath.Join(testenv.RepoRoot(), "testdata", "uppy")))))
	for _, v := range []string{"uppy6", "uppy5"} {
		dist := testenv.CachePath("npm", v, "node_modules", "uppy", "dist")
		mux.Handle("/test/"+v+"/", http.StripPrefix("/test/"+v+"/", http.FileServer(http.Dir(dist))))
	}
	mux.Handle("/", api)
	// The requests the page made, shown when a test fails: the first
	// thing to read when a client and the broker disagree.
	requests := &testenv.LockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- requests to the broker ---\n%s", requests.String())
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/test/") {
			fmt.Fprintf(requests, "%s %s (Content-Type: %q)\n", r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"))
		}
		// Browsers load modules only with a JavaScript type.
		if strings.HasSuffix(r.URL.Path, ".mjs") || strings.HasSuffix(r.URL.Path, ".js") && strings.HasPrefix(r.URL.Path, "/test/") {
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		}
		mux.ServeHTTP(w, r)
	})
}

// run runs chromedp steps within waitLimit.
func (s *stack) run(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.Browser, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) in the page.
func eval[T any](t *testing.T, s *stack, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.Browser, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is truthy.
func (s *stack) waitFor(t *testing.T, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(s.Browser, waitLimit)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitLimit))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// objects lists every object in the store, so a test can prove that
// nothing was left behind.
func (s *stack) objects(t *testing.T) []string {
	t.Helper()
	var keys []string
	if s.mc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		for o := range s.mc.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatalf("list objects: %v", o.Err)
			}
			keys = append(keys, o.Key)
		}
		return keys
	}
	err := filepath.WalkDir(s.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, _ := filepath.Rel(s.dataDir, p)
			keys = append(keys, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", s.dataDir, err)
	}
	sort.Strings(keys)
	return keys
}

// openUploads lists the multipart uploads still open in MinIO.
func (s *stack) openUploads(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var open []string
	for u := range s.mc.ListIncompleteUploads(ctx, s.bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("list incomplete uploads: %v", u.Err)
		}
		open = append(open, u.Key+" "+u.UploadID)
	}
	return open
}

// readObject reads a whole object through its backend's driver.
func (s *stack) readObject(t *testing.T, backend, key string, size int64) ([]byte, drivers.ObjectInfo) {
	t.Helper()
	d := s.Backends[backend]
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	info, err := d.Stat(ctx, key)
	if err != nil {
		t.Fatalf("stat %s: %v", key, err)
	}
	data, err := d.ReadRange(ctx, key, 0, size+1)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data, info
}

// gate stands in front of the store's upload URLs. Requests that hold
// matches are read in full and then kept until Release (or until the
// browser gives up on them, when they are dropped); requests that fail
// matches get one 503. Everything else passes.
type gate struct {
	next http.Handler

	mu       sync.Mutex
	hold     func(*http.Request) bool
	fail     func(*http.Request) bool
	failed   map[string]int
	attempts map[string]int
	methods  map[string]int
	// flight counts the upload requests received and not yet answered
	// (parallel_helpers_test.go).
	flight flightCount

	held    chan string   // a request is being held (its path and query)
	dropped chan string   // a held request was abandoned by the browser
	passed  chan string   // a request went through and got its answer
	release chan struct{} // closed by Release
	once    sync.Once
}

func newGate(next http.Handler) *gate {
	return &gate{
		next: next, failed: map[string]int{}, attempts: map[string]int{}, methods: map[string]int{},
		held: make(chan string, 64), dropped: make(chan string, 64), passed: make(chan string, 64),
		release: make(chan struct{}),
	}
}

// Hold makes the gate keep every upload request for which match is true.
func (g *gate) Hold(match func(*http.Request) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.hold = match
}

// FailOnce makes the gate answer 503 to the first attempt of every
// request for which match is true (keyed by path and query).
func (g *gate) FailOnce(match func(*http.Request) bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fail = match
}

// Release lets held requests through.
func (g *gate) Release() { g.once.Do(func() { close(g.release) }) }

// Attempts is how often a request (path and query) came.
func (g *gate) Attempts(id string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.attempts[id]
}

// Methods counts the upload requests by method.
func (g *gate) Methods() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.methods)
}

func requestID(r *http.Request) string { return r.URL.Path + "?" + r.URL.RawQuery }

func isUpload(r *http.Request) bool { return r.Method == http.MethodPut || r.Method == http.MethodPost }

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := requestID(r)
	w, answered := g.flight.enter(w, r)
	defer answered()
	g.mu.Lock()
	hold := isUpload(r) && g.hold != nil && g.hold(r)
	fail := false
	if isUpload(r) {
		g.methods[r.Method]++
		g.attempts[id]++
		if g.fail != nil && g.fail(r) && g.failed[id] == 0 {
			g.failed[id]++
			fail = true
		}
	}
	g.mu.Unlock()
	if fail {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		if origin := r.Header.Get("Origin"); origin != "" {
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "<Error><Code>SlowDown</Code><Message>test gate: try again</Message></Error>")
		return
	}
	if hold {
		// Read the body first: only then does net/http notice that the
		// browser hung up, and cancel the request's context.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			g.dropped <- id
			return
		}
		g.held <- id
		select {
		case <-g.release:
		case <-r.Context().Done():
			g.dropped <- id
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	g.next.ServeHTTP(w, r)
	if isUpload(r) {
		select {
		case g.passed <- id:
		default:
		}
	}
}

// receive waits for one value from a gate's channel.
func receive(t *testing.T, what string, ch <-chan string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("no %s within %v", what, waitLimit)
		return ""
	}
}

// writeFile writes test data into a temporary folder and returns its path.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
