package operations_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker"
	"github.com/upbroker/upbroker/internal/apitest"
	"github.com/upbroker/upbroker/internal/app"
	"github.com/upbroker/upbroker/internal/apptest"
	"github.com/upbroker/upbroker/internal/testenv"
	"github.com/upbroker/upbroker/metrics"
	"github.com/upbroker/upbroker/webhook"
)

// waitLimit bounds every wait on a server or a receiver. It is a deadline
// against a hung test, never an assertion on speed.
const waitLimit = 2 * time.Minute

// principal is the API key's name: the principal of every authenticated
// request. It is unusual on purpose, so that finding it in a metric is
// never a coincidence.
const principal = "ops-principal-q7zx"

// pngData is a real 1x1 PNG, so content sniffing accepts it.
var pngData = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

// baseYAML is the config of every test: a file backend, optionally a
// MinIO one, API-key auth, and the sections a test adds (rate_limit,
// webhooks).
const baseYAML = `
server:
  addr: 127.0.0.1:8080
  public_url: {{.PublicURL}}
  shutdown_timeout: 30s
secrets:
  ticket_keys: ["{{.TicketKey}}"]
auth:
  mode: api_key
  api_keys: [{name: ` + principal + `, sha256: "{{.KeyDigest}}"}]
backends:
  local:
    driver: file
    path: {{.DataDir}}
{{- if .MinIOEndpoint}}
  minio:
    driver: minio
    endpoint: {{.MinIOEndpoint}}
    region: us-east-1
    bucket: {{.Bucket}}
    access_key: {{.AccessKey}}
    secret_key: {{.SecretKey}}
{{- end}}
profiles:
  images:
    backend: local
    content_types: [image/png]
    max_size: 1MiB
    key: "images/{principal}/{uuid}{ext}"
    expires: 5m
    sniff: true
{{- if .MinIOEndpoint}}
  stored:
    backend: minio
    content_types: [image/png]
    max_size: 1MiB
    key: "stored/{principal}/{uuid}{ext}"
    expires: 5m
{{- end}}
default_profile: images
{{.Extra}}
`

// vars fill baseYAML.
type vars struct {
	PublicURL     string
	TicketKey     string
	KeyDigest     string
	DataDir       string
	MinIOEndpoint string
	Bucket        string
	AccessKey     string
	SecretKey     string
	Extra         string
}

type stackOptions struct {
	// minio adds a MinIO backend ("minio") and a profile on it ("stored").
	minio *testenv.MinIO
	// extra is YAML appended at the top level (rate_limit, webhooks).
	extra string
	// webhook tunes the dispatcher: short delays instead of minutes.
	webhook webhook.Options
}

// stack is one broker, built as `upbroker serve` builds it, on 127.0.0.1.
type stack struct {
	URL     string
	APIKey  string
	Metrics *metrics.Metrics
	Broker  *broker.Broker
	// Handler is the broker's handler behind the OpenAPI check.
	Handler    http.Handler
	Dispatcher *webhook.Dispatcher
	Logs       *testenv.LockedBuffer
	client     *http.Client
}

// newStack parses the config with config.Parse and builds the broker with
// app.Build, as cmd/upbroker's serve does.
func newStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	s := &stack{}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	apiKey, digest, err := auth.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	s.APIKey = apiKey
	srv := httptest.NewUnstartedServer(nil)
	s.URL = "http://" + srv.Listener.Addr().String()
	v := vars{PublicURL: s.URL, TicketKey: hex.EncodeToString(key), KeyDigest: digest, DataDir: t.TempDir(), Extra: o.extra}
	if m := o.minio; m != nil {
		v.MinIOEndpoint, v.AccessKey, v.SecretKey = m.Endpoint, m.AccessKey, m.SecretKey
		v.Bucket = m.Bucket(t, "ops")
	}
	cfg := apptest.Render(t, baseYAML, v)

	a := apptest.Build(t, cfg, apptest.Options{JSONLogs: true, App: app.Options{Webhook: o.webhook}})
	s.Logs = a.Logs
	s.Metrics, s.Broker, s.Dispatcher = a.Metrics, a.Broker, a.Dispatcher
	s.Handler = apitest.Wrap(t, s.Broker.Handler())
	srv.Config.Handler = s.Handler
	srv.Start()
	t.Cleanup(srv.Close)
	s.client = &http.Client{
		Timeout:       waitLimit,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s
}

type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) String() string { return r.Header.Get("X-Request-ID") + " " + string(r.Body) }

// do sends one request; a path starting with / goes to the broker.
func (s *stack) do(t *testing.T, method, url string, body []byte, hdr map[string]string) resp {
	t.Helper()
	if strings.HasPrefix(url, "/") {
		url = s.URL + url
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return resp{res.StatusCode, res.Header, b}
}

// api sends a JSON request as the test principal.
func (s *stack) api(t *testing.T, method, path string, body any, hdr map[string]string) resp {
	t.Helper()
	h := map[string]string{"Authorization": "Bearer " + s.APIKey}
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		h["Content-Type"] = "application/json"
	}
	for k, v := range hdr {
		h[k] = v
	}
	return s.do(t, method, path, raw, h)
}

type grant struct {
	ID, Key, Backend, Profile string
	Upload                    *struct {
		Method, URL string
		Headers     map[string]string
	}
	CompleteURL string `json:"complete_url"`
}

// grant asks for an upload and fails the test unless it is granted.
func (s *stack) grant(t *testing.T, req map[string]any) grant {
	t.Helper()
	r := s.api(t, http.MethodPost, "/v1/uploads", req, nil)
	if r.Status != http.StatusCreated {
		t.Fatalf("grant %v: %d %s", req, r.Status, r.Body)
	}
	var g grant
	if err := json.Unmarshal(r.Body, &g); err != nil {
		t.Fatalf("grant: %v: %s", err, r.Body)
	}
	if g.Upload == nil {
		t.Fatalf("grant %v: no single upload URL: %s", req, r.Body)
	}
	return g
}

// upload sends data to the grant's URL (the file driver's blob route, or
// the store).
func (s *stack) upload(t *testing.T, g grant, data []byte) {
	t.Helper()
	if r := s.do(t, g.Upload.Method, g.Upload.URL, data, g.Upload.Headers); r.Status/100 != 2 {
		t.Fatalf("upload %s: %d %s", g.Key, r.Status, r.Body)
	}
}

// complete asks the broker to check the upload.
func (s *stack) complete(t *testing.T, g grant) resp {
	t.Helper()
	return s.api(t, http.MethodPost, g.CompleteURL, map[string]any{}, nil)
}

// errCode is the code of an API error body.
func errCode(t *testing.T, r resp) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("not an error body: %v: %s", err, r.Body)
	}
	return e.Error.Code
}

// logLines decodes the JSON log lines whose msg is msg.
func (s *stack) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(s.Logs.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %q", err, line)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// eventually polls cond until it holds or waitLimit passes: a deadline
// for work that is asynchronous by design, not a timed assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
