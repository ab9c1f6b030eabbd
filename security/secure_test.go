package security

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/internal/testenv"
)

// secureKey is the test-only key written in testdata/secure.yaml's
// comments; the test checks it against the digest the file configures.
const secureKey = "upb_test_only_secure_yaml_NOT_A_REAL_KEY_0001"

// buildBinary builds cmd/upbroker into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "upbroker")
	// The go command that runs this test, found the way `go env` does.
	goBin := "go"
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if p := filepath.Join(strings.TrimSpace(string(out)), "bin", "go"); fileExists(p) {
			goBin = p
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "./cmd/upbroker")
	cmd.Dir = testenv.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/upbroker: %v\n%s", err, b)
	}
	return out
}

// secureConfig copies testdata/secure.yaml with only what a test must
// change: a free port and a temporary data folder. Keys, limits and
// profiles stay as the file has them.
func secureConfig(t *testing.T) (path, addr string, doc map[string]any) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "testdata", "secure.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatalf("testdata/secure.yaml: %v", err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	sub := func(m map[string]any, k string) map[string]any {
		v, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("testdata/secure.yaml has no %s block", k)
		}
		return v
	}
	sub(doc, "server")["addr"] = addr
	backends := sub(doc, "backends")
	if len(backends) != 1 {
		t.Fatalf("testdata/secure.yaml: expected one backend, got %d", len(backends))
	}
	for name := range backends {
		b := sub(backends, name)
		if b["driver"] != "file" {
			t.Fatalf("testdata/secure.yaml: backend %s is not the file driver", name)
		}
		b["path"] = t.TempDir()
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "secure.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, addr, doc
}

// TestSecureYAML is the "done means": the real binary started
// with testdata/secure.yaml refuses a request with no credentials, grants
// a valid one, and turns the 61st grant within a minute into 429.
func TestSecureYAML(t *testing.T) {
	path, addr, doc := secureConfig(t)
	// The key in the file's comments must be the one its digest admits,
	// or the example would teach users a key that does not work.
	keys := doc["auth"].(map[string]any)["api_keys"].([]any)
	if got := keys[0].(map[string]any)["sha256"]; got != auth.HashAPIKey(secureKey) {
		t.Fatalf("secure.yaml's digest %v is not the SHA-256 of the test key in its comments", got)
	}
	limit := doc["rate_limit"].(map[string]any)["grants_per_minute"].(int)
	if limit != 60 {
		t.Fatalf("secure.yaml: grants_per_minute is %d, the issue asks for 60", limit)
	}

	bin := buildBinary(t)
	// No ticket key: the file relies on the ephemeral one of loopback.
	p := testenv.Start(t, "upbroker", []string{"UPBROKER_TICKET_KEY=", "UPBROKER_CONFIG="}, bin, "serve", "--config", path)
	p.WaitTCP(t, addr, time.Minute)
	base := "http://" + addr
	body := `{"filename":"cat.png","content_type":"image/png","size":1234}`

	tests := []struct {
		name   string
		key    string
		status int
		code   string
	}{
		{"no credentials", "", http.StatusUnauthorized, "unauthorized"},
		{"wrong key", secureKey[:len(secureKey)-1] + "2", http.StatusUnauthorized, "unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, grantRequest(t, base, tc.key, body))
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if e, ok := r.err(); !ok || e.Code != tc.code {
				t.Errorf("error %+v, want code %s", e, tc.code)
			}
		})
	}

	// Grants until the first refusal. GCRA gives back one grant per
	// second of the run, so a slow machine may see more than 60 before
	// the refusal: at most 60 plus the whole seconds the run took. The
	// bound is a fact of the algorithm, not a guess at speed.
	start := time.Now()
	granted := 0
	var refused *response
	for i := 0; i < 200 && refused == nil; i++ {
		r := do(t, grantRequest(t, base, secureKey, body))
		switch r.Status {
		case http.StatusCreated:
			granted++
			if i == 0 {
				var g grant
				if err := json.Unmarshal(r.Body, &g); err != nil || g.ID == "" || !strings.HasPrefix(g.Key, "images/test/") {
					t.Fatalf("first grant %s: %v; want a ticket and a key under images/test/", r.Body, err)
				}
			}
		case http.StatusTooManyRequests:
			refused = r
		default:
			t.Fatalf("grant %d: status %d: %s", i+1, r.Status, r.Body)
		}
	}
	elapsed := time.Since(start)
	if refused == nil {
		t.Fatalf("200 grants in a row were all granted; the limit is %d a minute", limit)
	}
	extra := int(elapsed / time.Second)
	if granted < limit || granted > limit+extra {
		t.Fatalf("%d grants before the first 429 (in %v); want %d (at most %d after that long)", granted, elapsed, limit, limit+extra)
	}
	if granted != limit {
		t.Logf("the run took %v, so %d grants were given back before the 429", elapsed, granted-limit)
	}
	if e, ok := refused.err(); !ok || e.Code != "rate_limited" {
		t.Errorf("429 body %s, want code rate_limited", refused.Body)
	}
	if s, err := strconv.Atoi(refused.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Errorf("Retry-After %q, want whole seconds from 1 to 60", refused.Header.Get("Retry-After"))
	}

	// The real server's limits, at the defaults the file leaves alone.
	t.Run("header over server.max_header_bytes", func(t *testing.T) { headerTooLarge(t, addr) })
	t.Run("headers sent slowly", func(t *testing.T) { slowHeaders(t, addr) })

	p.Stop()
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("upbroker exited %d on SIGTERM, want 0:\n%s", code, p.Output())
	}
	logs := p.Output()
	if strings.Contains(logs, secureKey) {
		t.Errorf("the API key appears in the broker's log")
	}
	if !strings.Contains(logs, "stopped cleanly") {
		t.Errorf("no clean shutdown in the log:\n%s", logs)
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// headerTooLarge sends a header block over the default max_header_bytes
// (64 KiB): the server must answer 431 without reading it all. The bytes
// go over a bare connection, written while the answer is read, because
// the server answers before the request is fully sent.
func headerTooLarge(t *testing.T, addr string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(requestTimeout)); err != nil {
		t.Fatal(err)
	}
	req := "GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\nX-Padding: " + strings.Repeat("p", 80<<10) + "\r\n\r\n"
	go func() { _, _ = io.WriteString(conn, req) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to an oversized header block: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", resp.StatusCode)
	}
}

// slowHeaders starts a request and never ends its headers: the server
// must hang up once server.read_header_timeout (10s by default) has
// passed, rather than hold the connection for as long as the client
// likes. The deadline here only bounds the test; it is far above 10s.
func slowHeaders(t *testing.T, addr string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/uploads HTTP/1.1\r\nHost: "+addr+"\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(2 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Whatever the server sends before it hangs up (nothing, or a 408)
	// is read and dropped; only a connection left open fails.
	_, err = io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept a connection with unfinished headers open for 2 minutes")
	}
}
