package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/upbroker/upbroker/internal/testenv"
)

// testVersion is stamped into the test binary, to prove -ldflags reach it.
const testVersion = "v9.8.7-test"

var binary string

// TestMain builds the binary once; every test runs it as a user would.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "upbroker-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "upbroker")
	build := exec.Command("go", "build", "-o", binary,
		"-ldflags", "-X github.com/upbroker/upbroker/internal/version.Version="+testVersion, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build upbroker:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// runBin executes the binary to completion with a clean UPBROKER_ environment.
func runBin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// cleanEnv drops UPBROKER_ variables of the developer's shell, which would
// override the test's config.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "UPBROKER_") {
			out = append(out, kv)
		}
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"serve", "config", "version", "apikey", "--log-format", "--log-level", "json", "debug, info, warn or error"}},
		{[]string{"serve", "--help"}, []string{"--config", "UPBROKER_CONFIG", "UPBROKER_TICKET_KEY", "SIGTERM", "shutdown_timeout", "Examples:", "--log-format"}},
		{[]string{"config", "--help"}, []string{"check", "example"}},
		{[]string{"config", "check", "--help"}, []string{"FILE", "<redacted>", "exit code is 1", "Examples:"}},
		{[]string{"config", "example", "--help"}, []string{"example", "Examples:"}},
		{[]string{"version", "--help"}, []string{"version", "Examples:"}},
		{[]string{"apikey", "--help"}, []string{"new"}},
		{[]string{"apikey", "new", "--help"}, []string{"sha256", "X-API-Key", "Examples:"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runBin(t, nil, tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--log-format", "xml", "version"}, "--log-format"},
		{[]string{"--log-level", "loud", "version"}, "--log-level"},
		{[]string{"serve"}, "UPBROKER_CONFIG"},
		{[]string{"config", "check"}, "accepts 1 arg"},
		{[]string{"nope"}, "unknown command"},
	}
	for _, tt := range tests {
		r := runBin(t, nil, tt.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want failure mentioning %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
}

func TestVersion(t *testing.T) {
	r := runBin(t, nil, "version")
	if r.code != 0 || strings.TrimSpace(r.stdout) != testVersion {
		t.Fatalf("version: exit %d, %q, want %q", r.code, r.stdout, testVersion)
	}
}

func TestAPIKeyNew(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		r := runBin(t, nil, "apikey", "new")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var key, digest string
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch k {
			case "key":
				key = strings.TrimSpace(v)
			case "sha256":
				digest = strings.TrimSpace(v)
			}
		}
		sum := sha256.Sum256([]byte(key))
		if key == "" || hex.EncodeToString(sum[:]) != digest {
			t.Fatalf("digest %q does not match key %q", digest, key)
		}
		if len(key) < 40 {
			t.Errorf("key %q is too short to hold 256 random bits", key)
		}
		if seen[key] {
			t.Errorf("the same key twice: %q", key)
		}
		seen[key] = true
	}
}

func TestConfigExample(t *testing.T) {
	r := runBin(t, nil, "config", "example")
	if r.code != 0 || !strings.Contains(r.stdout, "# ") {
		t.Fatalf("example: exit %d\n%s", r.code, r.stderr)
	}
	// The example is valid as printed.
	c := runBin(t, nil, "config", "check", writeFile(t, "example.yaml", r.stdout))
	if c.code != 0 {
		t.Fatalf("the example does not pass config check:\n%s", c.stderr)
	}
}

func TestConfigCheckGood(t *testing.T) {
	const ticket = "ticket-key-for-check-0123456789abcdef"
	const s3secret = "s3-secret-for-check-424242"
	path := writeFile(t, "good.yaml", `
server: {addr: 127.0.0.1:8080}
secrets: {ticket_keys: ["${MY_TICKET}"]}
auth: {mode: none}
backends:
  local: {driver: file, path: ./data}
  aws: {driver: s3, bucket: up, region: eu-west-1, access_key: AKIAEXAMPLE, secret_key: "`+s3secret+`"}
profiles:
  images: {backend: local, content_types: [image/png], max_size: 10MiB}
`)
	r := runBin(t, []string{"MY_TICKET=" + ticket, "UPBROKER_PROFILES_IMAGES_MAX_SIZE=20MiB"}, "config", "check", path)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, s := range []string{ticket, s3secret} {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("secret %q printed:\n%s", s, r.stdout)
		}
	}
	for _, want := range []string{"max_size: 20MiB", "access_key: AKIAEXAMPLE", "secret_key: <redacted>", "ticket_keys: [<redacted>]", "read_timeout: 1h", "default_profile: images"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestConfigCheckBad(t *testing.T) {
	const hookSecret = "hook-secret-never-print-me"
	const jwtSecret = "short-jwt-secret"
	path := writeFile(t, "bad.yaml", `
server: {addr: 0.0.0.0:8080, raed_timeout: 5s}
secrets: {ticket_keys: ["tooshort-ticket-key"]}
auth: {mode: jwt, jwt: {hs256_secret: "`+jwtSecret+`"}}
backends:
  local: {driver: fiel, path: ./data}
  aws: {driver: s3, bucket: up, secret_kee: x}
profiles:
  images: {backend: locl, content_types: [], max_size: -1, expires: 30d}
webhooks: [{url: "ftp://hooks", secret: "`+hookSecret+`", events: [upload.done]}]
`)
	r := runBin(t, nil, "config", "check", path)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("a bad config printed a config:\n%s", r.stdout)
	}
	for _, want := range []string{
		`server.raed_timeout: unknown key; did you mean "read_timeout"?`,
		"secrets.ticket_keys[0]: a ticket key must be at least 32 bytes",
		"auth.jwt.hs256_secret: must be at least 32 bytes",
		`backends.local.driver: unknown driver "fiel"`,
		`backends.aws.secret_kee: unknown setting for driver s3; did you mean "secret_key"?`,
		`profiles.images.backend: no backend named "locl"`,
		"profiles.images.content_types: the allow-list is empty",
		"profiles.images.max_size: size -1 is negative",
		"profiles.images.expires: 30d is more than the 7d",
		"webhooks[0].url: must be an absolute http:// or https:// URL",
		`webhooks[0].events[0]: unknown event "upload.done"`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	for _, s := range []string{hookSecret, jwtSecret, "tooshort-ticket-key"} {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("secret %q printed:\n%s", s, r.stderr)
		}
	}
}

// server is a running `upbroker serve`.
type server struct {
	cmd    *exec.Cmd
	base   string
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs serve with the config text, in which ADDR stands for a
// free 127.0.0.1 port, and waits until /healthz answers.
func startServe(t *testing.T, config string, env ...string) *server {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	path := writeFile(t, "upbroker.yaml", strings.ReplaceAll(config, "ADDR", addr))
	s := &server{base: "http://" + addr, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	s.cmd = exec.Command(binary, "serve", "--log-level", "debug")
	s.cmd.Env = append(cleanEnv(), append(env, "UPBROKER_CONFIG="+path)...)
	s.cmd.Dir = t.TempDir()
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	// Waiting for readiness is not an assertion on time: the loop ends
	// when the process answers or dies.
	for {
		select {
		case <-s.done:
			t.Fatalf("serve exited early: %v\n%s", s.err, s.stderr.String())
		default:
		}
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit code.
func (s *server) stop(t *testing.T) int {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return s.wait(t)
}

func (s *server) wait(t *testing.T) int {
	t.Helper()
	<-s.done
	var ee *exec.ExitError
	if errors.As(s.err, &ee) {
		return ee.ExitCode()
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return 0
}

func (s *server) post(t *testing.T, path string, headers map[string]string, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

const fileConfig = `
server: {addr: ADDR, shutdown_timeout: 2m, drain_delay: 0s}
auth: {mode: none}
backends:
  local: {driver: file, path: DATA}
profiles:
  docs: {backend: local, content_types: [text/plain], max_size: 1MiB}
`

func TestServeHealthAndSignal(t *testing.T) {
	data := t.TempDir()
	cfg := strings.Replace(fileConfig, "drain_delay: 0s", "drain_delay: 3s", 1)
	s := startServe(t, strings.ReplaceAll(cfg, "DATA", data))
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(s.base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// During server.drain_delay the broker still serves, and /readyz
	// says 503 so that load balancers stop sending. The loop ends on the
	// first 503, or fails if the process stops serving before any.
	for {
		resp, err := http.Get(s.base + "/readyz")
		if err != nil {
			t.Fatalf("/readyz unreachable before it answered 503 during the drain delay: %v\n%s", err, s.stderr.String())
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, s.stderr.String())
	}
	logs := s.stderr.String()
	for _, want := range []string{`"msg":"upbroker listening"`, "ephemeral", `"msg":"draining: /readyz answers 503`, `"msg":"stopped cleanly"`, `"level":"DEBUG"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	// Every log line is JSON (the default format).
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
}

func TestServeRefusals(t *testing.T) {
	data := t.TempDir()
	tests := []struct {
		name, config, want string
	}{
		{"no ticket key off loopback", "server: {addr: 0.0.0.0:0}\nauth: {mode: none, allow_anonymous: true}\nbackends: {local: {driver: file, path: " + data + "}}\nprofiles: {p: {backend: local, content_types: [text/plain], max_size: 1KiB}}\n", "UPBROKER_TICKET_KEY"},
		{"mode none off loopback", "server: {addr: 0.0.0.0:0}\nsecrets: {ticket_keys: [" + strings.Repeat("k", 40) + "]}\nauth: {mode: none}\nbackends: {local: {driver: file, path: " + data + "}}\nprofiles: {p: {backend: local, content_types: [text/plain], max_size: 1KiB}}\n", "allow_anonymous"},
		{"mode missing", "backends: {local: {driver: file, path: " + data + "}}\nprofiles: {p: {backend: local, content_types: [text/plain], max_size: 1KiB}}\n", "mode: none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runBin(t, nil, "serve", "--config", writeFile(t, "c.yaml", tt.config))
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d, stderr:\n%s\nwant a refusal mentioning %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

// TestShutdownDuringSlowUpload sends SIGTERM while a PUT to the file
// driver's blob route is trickling in: the upload must complete, the
// object must be stored, and the process must exit 0.
func TestShutdownDuringSlowUpload(t *testing.T) {
	data := t.TempDir()
	s := startServe(t, strings.ReplaceAll(fileConfig, "DATA", data), "UPBROKER_TICKET_KEY="+strings.Repeat("t", 40))
	body := bytes.Repeat([]byte("slow upload line\n"), 2000)
	code, grant := s.post(t, "/v1/uploads", nil, fmt.Sprintf(`{"filename":"slow.txt","content_type":"text/plain","size":%d}`, len(body)))
	if code != http.StatusCreated {
		t.Fatalf("grant: %d %v", code, grant)
	}
	up := grant["upload"].(map[string]any)
	u, err := url.Parse(up["url"].(string))
	if err != nil {
		t.Fatal(err)
	}

	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n", up["method"], u.RequestURI(), u.Host, len(body))
	for k, v := range up["headers"].(map[string]any) {
		fmt.Fprintf(&hdr, "%s: %s\r\n", k, v)
	}
	hdr.WriteString("\r\n")
	if _, err := io.WriteString(conn, hdr.String()); err != nil {
		t.Fatal(err)
	}
	// 100 Continue comes when the handler starts reading the body: from
	// then on the request is in flight.
	br := bufio.NewReader(conn)
	cont, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cont.StatusCode != http.StatusContinue {
		b, _ := io.ReadAll(cont.Body)
		t.Fatalf("want 100 Continue, got %d %s", cont.StatusCode, b)
	}
	if _, err := conn.Write(body[:100]); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The pauses only make the upload slow; nothing asserts on time.
	for off := 100; off < len(body); off += 4096 {
		time.Sleep(100 * time.Millisecond)
		if _, err := conn.Write(body[off:min(off+4096, len(body))]); err != nil {
			t.Fatalf("write after SIGTERM: %v", err)
		}
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("upload during shutdown: %d %s", resp.StatusCode, msg)
	}
	if code := s.wait(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, s.stderr.String())
	}
	stored, err := os.ReadFile(filepath.Join(data, filepath.FromSlash(grant["key"].(string))))
	if err != nil || !bytes.Equal(stored, body) {
		t.Fatalf("stored object: %v, %d bytes of %d", err, len(stored), len(body))
	}
	if !strings.Contains(s.stderr.String(), "shutting down") {
		t.Errorf("no shutdown log:\n%s", s.stderr.String())
	}
}

// TestServeKeepsSecrets runs a session with secrets everywhere (ticket
// key, an S3 secret key, a webhook secret, API keys, a near-miss key), with
// successes and failures, and greps everything printed for them.
func TestServeKeepsSecrets(t *testing.T) {
	const (
		ticketKey = "ticket-key-SECRET-0123456789-abcdefghij"
		s3Secret  = "s3-SECRET-key-wJalrXUtnFEMI-K7MDENG"
		s3Token   = "s3-SECRET-session-token-9f8e7d"
		hookSec   = "webhook-SECRET-5b6c7d8e9f"
		apiKey    = "upb_SECRET-api-key-0123456789abcdefghijklmnop"
		nearMiss  = "upb_SECRET-api-key-0123456789abcdefghijklmnoq"
	)
	var hooks sync.WaitGroup
	hooks.Add(1)
	var once sync.Once
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(hooks.Done)
		http.Error(w, "try later", http.StatusInternalServerError) // force retries and their logs
	}))
	defer receiver.Close()
	sum := sha256.Sum256([]byte(apiKey))
	closed := testenv.FreePort(t) // nothing listens: every S3 call fails
	data := t.TempDir()
	s := startServe(t, fmt.Sprintf(`
server: {addr: ADDR, shutdown_timeout: 5s}
secrets: {ticket_keys: ["${TICKET}"]}
auth:
  mode: api_key
  api_keys: [{name: web, sha256: %s}]
backends:
  local: {driver: file, path: %s}
  aws: {driver: s3, bucket: uploads, region: us-east-1, endpoint: "http://127.0.0.1:%d", path_style: "true", access_key: AKIATEST, secret_key: "${S3_SECRET}", session_token: "%s"}
profiles:
  docs: {backend: local, content_types: [text/plain], max_size: 1MiB}
  remote: {backend: aws, content_types: [text/plain], max_size: 1MiB}
default_profile: docs
webhooks: [{url: "%s", secret: "%s", events: [upload.completed, upload.aborted]}]
`, hex.EncodeToString(sum[:]), data, closed, s3Token, receiver.URL, hookSec), "TICKET="+ticketKey, "S3_SECRET="+s3Secret)

	auth := map[string]string{"Authorization": "Bearer " + apiKey}
	grantBody := `{"filename":"a.txt","content_type":"text/plain","size":5}`
	if code, _ := s.post(t, "/v1/uploads", map[string]string{"Authorization": "Bearer " + nearMiss}, grantBody); code != http.StatusUnauthorized {
		t.Errorf("near-miss key: %d", code)
	}
	if code, _ := s.post(t, "/v1/uploads", map[string]string{"X-API-Key": nearMiss}, grantBody); code != http.StatusUnauthorized {
		t.Errorf("near-miss X-API-Key: %d", code)
	}
	if code, _ := s.post(t, "/v1/uploads", auth, `{"filename":`); code != http.StatusBadRequest {
		t.Errorf("malformed JSON: %d", code)
	}
	if code, _ := s.post(t, "/v1/uploads", auth, `{"filename":"a.txt","content_type":"text/plain","size":5,"profile":"remote"}`); code != http.StatusCreated {
		t.Errorf("grant on S3 (signing needs no network): %d", code)
	}
	code, grant := s.post(t, "/v1/uploads", auth, grantBody)
	if code != http.StatusCreated {
		t.Fatalf("grant: %d %v", code, grant)
	}
	// Upload and complete on the file backend, so a webhook is sent.
	up := grant["upload"].(map[string]any)
	req, _ := http.NewRequest(up["method"].(string), up["url"].(string), strings.NewReader("hello"))
	for k, v := range up["headers"].(map[string]any) {
		req.Header.Set(k, v.(string))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	if code, out := s.post(t, "/v1/uploads/"+grant["id"].(string)+"/complete", auth, `{}`); code != http.StatusOK {
		t.Fatalf("complete: %d %v", code, out)
	}
	// Tampered ticket, and a readiness check that fails on the S3 backend.
	if code, _ := s.post(t, "/v1/uploads/"+grant["id"].(string)+"x/complete", auth, `{}`); code/100 != 4 {
		t.Errorf("tampered ticket: %d", code)
	}
	if resp, err := http.Get(s.base + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("readyz with S3 down: %d", resp.StatusCode)
		}
	}
	hooks.Wait() // the webhook went out (and failed) before shutdown
	if code := s.stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	all := s.stdout.String() + s.stderr.String()
	if !strings.Contains(all, "webhook") {
		t.Errorf("no webhook activity logged, so the test did not exercise it:\n%s", all)
	}
	for name, secret := range map[string]string{"ticket key": ticketKey, "s3 secret": s3Secret, "s3 token": s3Token, "webhook secret": hookSec, "api key": apiKey, "near-miss key": nearMiss} {
		if strings.Contains(all, secret) {
			t.Errorf("%s appears in the output:\n%s", name, all)
		}
		// A prefix long enough to be the secret's tell-tale part.
		if strings.Contains(all, secret[:16]) {
			t.Errorf("the start of the %s appears in the output", name)
		}
	}
}
