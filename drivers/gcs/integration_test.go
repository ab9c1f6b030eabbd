package gcs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/drivertest"
	"github.com/upbroker/upbroker/internal/testenv"
)

// startGCS runs fake-gcs-server behind the verifying proxy and opens the
// driver on it with a test service-account key.
func startGCS(t *testing.T) (*Driver, *verifyingProxy, *testenv.FakeGCS) {
	t.Helper()
	fake := testenv.StartFakeGCS(t)
	fake.CreateBucket(t, "uploads")
	key, path, _ := testKey(t)
	p := startProxy(t, fake, &key.PublicKey)
	t.Setenv("STORAGE_EMULATOR_HOST", "") // the endpoint setting decides
	d, err := Open(context.Background(), drivers.Settings{
		"bucket": "uploads", "credentials_file": path, "endpoint": p.srv.URL,
	}, drivers.Env{Backend: "gcs"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, p, fake
}

func TestConformance(t *testing.T) {
	var p *verifyingProxy
	drivertest.Run(t, drivertest.Harness{
		Open: func(t *testing.T) drivers.Driver {
			var d *Driver
			d, p, _ = startGCS(t)
			return d
		},
	})
	// The suite's refusals came from the proxy's checks, not by accident.
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refused == 0 {
		t.Errorf("the verifying proxy refused nothing; the suite's bad uploads did not reach it")
	}
}

func send(t *testing.T, method, rawURL string, headers map[string]string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestProxyRefusals checks each rule of the proxy on its own, so a
// conformance pass means the rules ran.
func TestProxyRefusals(t *testing.T) {
	d, p, _ := startGCS(t)
	ctx := context.Background()
	body := []byte("0123456789")
	grant := func(key string) drivers.Grant {
		g, err := d.PresignPut(ctx, key, drivers.Constraints{ContentType: "text/plain", Size: int64(len(body)), NoOverwrite: true,
			Expires: 5 * time.Minute, Metadata: map[string]string{"upbrokerprincipal": "u-1"}})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	if st, b := send(t, "PUT", grant("exists.txt").URL, grant("exists.txt").Headers, body); st != http.StatusOK {
		t.Fatalf("first upload: %d %s", st, b)
	}
	without := func(h map[string]string, k string) map[string]string {
		out := map[string]string{}
		for kk, v := range h {
			if kk != k {
				out[kk] = v
			}
		}
		return out
	}
	tests := []struct {
		name   string
		key    string
		mutate func(g *drivers.Grant)
		body   []byte
		status int
	}{
		{"valid", "ok.txt", func(g *drivers.Grant) {}, body, http.StatusOK},
		{"overwrite", "exists.txt", func(g *drivers.Grant) {}, body, http.StatusPreconditionFailed},
		{"too long", "long.txt", func(g *drivers.Grant) {}, append(body, 'x'), http.StatusBadRequest},
		{"metadata dropped", "nometa.txt", func(g *drivers.Grant) { g.Headers = without(g.Headers, "x-goog-meta-upbrokerprincipal") }, body, http.StatusForbidden},
		{"precondition dropped", "nopre.txt", func(g *drivers.Grant) { g.Headers = without(g.Headers, "x-goog-if-generation-match") }, body, http.StatusForbidden},
		{"range widened", "wide.txt", func(g *drivers.Grant) { g.Headers["x-goog-content-length-range"] = "0,1000" }, body, http.StatusForbidden},
		{"unsigned", "unsigned.txt", func(g *drivers.Grant) { g.URL = g.URL[:strings.Index(g.URL, "?")] }, body, http.StatusForbidden},
		{"other object", "other.txt", func(g *drivers.Grant) { g.URL = strings.Replace(g.URL, "/signed.txt?", "/other.txt?", 1) }, body, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			signFor := tc.key
			if tc.name == "other object" {
				signFor = "signed.txt"
			}
			g := grant(signFor)
			tc.mutate(&g)
			st, b := send(t, g.Method, g.URL, g.Headers, tc.body)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %s", st, tc.status, b)
			}
			_, err := d.Stat(ctx, tc.key)
			if tc.status == http.StatusOK && err != nil {
				t.Fatalf("accepted upload missing: %v", err)
			}
			if tc.status != http.StatusOK && tc.key != "exists.txt" && !errors.Is(err, drivers.ErrNotFound) {
				t.Fatalf("refused upload left an object: %v", err)
			}
		})
	}

	// Expiry, by moving the proxy's clock rather than waiting.
	g := grant("late.txt")
	p.mu.Lock()
	p.offset = 6 * time.Minute
	p.mu.Unlock()
	if st, b := send(t, g.Method, g.URL, g.Headers, body); st != http.StatusBadRequest || !strings.Contains(b, "ExpiredToken") {
		t.Fatalf("expired: %d %s", st, b)
	}
}

// TestEmulatorGaps pins what fake-gcs-server itself does not check, which
// is why the verifying proxy exists. If a new version starts checking one
// of these, this test fails and the proxy's rule can go.
func TestEmulatorGaps(t *testing.T) {
	d, _, fake := startGCS(t)
	ctx := context.Background()
	body := []byte("0123456789")
	g, err := d.PresignPut(ctx, "gap.txt", drivers.Constraints{ContentType: "text/plain", Size: int64(len(body)), NoOverwrite: true, Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// The same signed path and query, sent straight to the emulator.
	direct := fake.URL + g.URL[strings.Index(g.URL, "/uploads/"):]
	tests := []struct {
		name   string
		url    string
		hdr    map[string]string
		body   []byte
		accept bool
	}{
		{"first upload", direct, g.Headers, body, true},
		{"overwrite despite if-generation-match 0", direct, g.Headers, body, true},
		{"body longer than content-length-range", direct, g.Headers, append(body, 'x'), true},
		{"garbage signature", strings.Replace(direct, "X-Goog-Signature=", "X-Goog-Signature=00", 1), g.Headers, body, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, b := send(t, http.MethodPut, tc.url, tc.hdr, tc.body)
			if ok := st/100 == 2; ok != tc.accept {
				t.Fatalf("fake-gcs-server answered %d (%s); the pinned gap changed", st, b)
			}
		})
	}
}

func TestErrorMappingGCS(t *testing.T) {
	d, p, _ := startGCS(t)
	_, path, _ := testKey(t)
	down, err := Open(context.Background(), drivers.Settings{
		"bucket": "uploads", "credentials_file": path,
		"endpoint": "http://127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
	}, drivers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	missingBucket, err := Open(context.Background(), drivers.Settings{
		"bucket": "no-such-bucket", "credentials_file": path, "endpoint": p.srv.URL,
	}, drivers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer missingBucket.Close()

	tests := []struct {
		name string
		call func(context.Context) error
		want error
	}{
		{"stat missing", func(ctx context.Context) error { _, err := d.Stat(ctx, "nope"); return err }, drivers.ErrNotFound},
		{"read missing", func(ctx context.Context) error { _, err := d.ReadRange(ctx, "nope", 0, 10); return err }, drivers.ErrNotFound},
		{"delete missing", func(ctx context.Context) error { return d.Delete(ctx, "nope") }, nil},
		{"ping", d.Ping, nil},
		{"ping missing bucket", missingBucket.Ping, drivers.ErrUnavailable},
		{"stat unreachable", func(ctx context.Context) error { _, err := down.Stat(ctx, "x"); return err }, drivers.ErrUnavailable},
		{"ping unreachable", down.Ping, drivers.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := tc.call(ctx)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestEmulatorCORSPreflight proves that testenv starts fake-gcs-server with
// every header of a grant allowed, so the demo page can upload to it.
func TestEmulatorCORSPreflight(t *testing.T) {
	d, _, fake := startGCS(t)
	g, err := d.PresignPut(context.Background(), "cors.txt", drivers.Constraints{ContentType: "text/plain", Size: 1, NoOverwrite: true,
		Expires: time.Minute, Metadata: map[string]string{"upbrokerprincipal": "u", "upbrokerprofile": "p"}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range g.Headers {
		names = append(names, strings.ToLower(k))
	}
	req, _ := http.NewRequest(http.MethodOptions, fake.URL+g.URL[strings.Index(g.URL, "/uploads/"):], nil)
	req.Header.Set("Origin", "http://127.0.0.1:8080")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	req.Header.Set("Access-Control-Request-Headers", strings.Join(names, ","))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, n := range names {
		if !strings.Contains(allowed, n) {
			t.Errorf("preflight (%d) does not allow %s: %q", resp.StatusCode, n, allowed)
		}
	}
}
