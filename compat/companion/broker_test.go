package companion_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/internal/apitest"
	"github.com/upbroker/upbroker/internal/app"
	"github.com/upbroker/upbroker/internal/apptest"
	"github.com/upbroker/upbroker/internal/testenv"
	"github.com/upbroker/upbroker/webhook"
)

// waitLimit bounds every wait on the broker or the receiver: a deadline
// against a hung test, never an assertion on speed.
const waitLimit = 2 * time.Minute

// principalName is unusual on purpose, so that finding it in a metric
// label is never a coincidence.
const principalName = "uppy-principal-w8kq"

const hookSecret = "whsec-companion-0123456789abcdef"

const brokerYAML = `
server:
  addr: 127.0.0.1:8080
  public_url: {{.PublicURL}}
secrets:
  ticket_keys: ["{{.TicketKey}}"]
auth:
  mode: api_key
  api_keys: [{name: ` + principalName + `, sha256: "{{.KeyDigest}}"}]
backends:
  minio:
    driver: minio
    endpoint: {{.Endpoint}}
    region: us-east-1
    bucket: {{.Bucket}}
    access_key: {{.AccessKey}}
    secret_key: {{.SecretKey}}
profiles:
  uppy:
    backend: minio
    content_types: [image/png]
    max_size: 8MiB
    key: "uppy/{principal}/{uuid}{ext}"
    expires: 5m
    sniff: true
default_profile: uppy
compat:
  companion: {enabled: true, path: /s3, profile: uppy}
webhooks:
  - url: {{.HookURL}}
    secret: ` + hookSecret + `
    events: [upload.completed, upload.rejected, upload.aborted]
`

const maxSize = 8 << 20

// hooks is an httptest webhook receiver that keeps every verified event.
type hooks struct {
	mu  sync.Mutex
	got []events.Event
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// Verified with the helper receivers use; a delivery that does not
	// verify is refused with a 4xx, which the dispatcher does not retry,
	// so the test sees it as a missing event.
	if err := webhook.Verify(hookSecret, r.Header.Get(webhook.SignatureHeader), body, 5*time.Minute); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev events.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != r.Header.Get(webhook.EventIDHeader) {
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.got = append(h.got, ev)
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hooks) events() []events.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]events.Event(nil), h.got...)
}

type brokerStack struct {
	url, apiKey string
	minio       *testenv.MinIO
	bucket      string
	hooks       *hooks
}

// newBrokerStack builds the broker as `upbroker serve` does (config.Parse,
// app.Build) with Companion's routes on, a MinIO backend and a webhook to
// an httptest receiver.
func newBrokerStack(t *testing.T, m *testenv.MinIO) *brokerStack {
	t.Helper()
	hk := &hooks{}
	recv := httptest.NewServer(hk)
	// Closed after the broker (cleanups run last in, first out), so that
	// the dispatcher's last tries find the receiver.
	t.Cleanup(recv.Close)

	ticketKey := make([]byte, 32)
	if _, err := rand.Read(ticketKey); err != nil {
		t.Fatal(err)
	}
	apiKey, digest, err := auth.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	s := &brokerStack{url: "http://" + srv.Listener.Addr().String(), apiKey: apiKey, minio: m, hooks: hk,
		bucket: m.Bucket(t, fmt.Sprintf("companion-broker-%d", time.Now().UnixNano()))}
	cfg := apptest.Render(t, brokerYAML, map[string]string{
		"PublicURL": s.url, "TicketKey": hex.EncodeToString(ticketKey), "KeyDigest": digest,
		"Endpoint": m.Endpoint, "Bucket": s.bucket, "AccessKey": m.AccessKey, "SecretKey": m.SecretKey,
		"HookURL": recv.URL,
	})
	a := apptest.Build(t, cfg, apptest.Options{JSONLogs: true, App: app.Options{
		Webhook: webhook.Options{BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: 6},
	}})
	srv.Config.Handler = apitest.Wrap(t, a.Broker.Handler())
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (s *brokerStack) do(t *testing.T, method, u string, body []byte, hdr map[string]string) answer {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = s.url + u
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, u, err)
	}
	return answer{res.StatusCode, res.Header, b}
}

// companion calls a Companion route as Uppy 5.x does, with the API key.
func (s *brokerStack) companion(t *testing.T, method, path string, body any) answer {
	t.Helper()
	hdr := map[string]string{"Authorization": "Bearer " + s.apiKey, "Accept": "application/json"}
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		hdr["Content-Type"] = "application/json"
	}
	return s.do(t, method, "/s3"+path, raw, hdr)
}

func decode(t *testing.T, a answer, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %d %s: %v", a.status, a.body, err)
	}
}

type upload struct{ Key, UploadID string }

func (u upload) path(suffix string) string {
	return "/multipart/" + url.PathEscape(u.UploadID) + suffix + "?" + url.Values{"key": {u.Key}}.Encode()
}

// multipart creates an upload and puts data as its part 1.
func (s *brokerStack) multipart(t *testing.T, data []byte) (upload, string) {
	t.Helper()
	a := s.companion(t, http.MethodPost, "/multipart", map[string]any{
		"filename": "photo.png", "type": "image/png", "metadata": map[string]any{"name": "photo.png", "caption": "sunset"},
	})
	if a.status != http.StatusOK {
		t.Fatalf("create: %d %s", a.status, a.body)
	}
	var u upload
	decode(t, a, &u)
	a = s.companion(t, http.MethodGet, u.path("/1"), nil)
	if a.status != http.StatusOK {
		t.Fatalf("sign part: %d %s", a.status, a.body)
	}
	var signed struct{ URL string }
	decode(t, a, &signed)
	put := s.do(t, http.MethodPut, signed.URL, data, nil)
	if put.status != http.StatusOK || put.header.Get("ETag") == "" {
		t.Fatalf("PUT part: %d %s", put.status, put.body)
	}
	return u, put.header.Get("ETag")
}

func (s *brokerStack) complete(t *testing.T, u upload, etag string) answer {
	t.Helper()
	return s.companion(t, http.MethodPost, u.path("/complete"), map[string]any{
		"parts": []map[string]any{{"PartNumber": 1, "ETag": etag}},
	})
}

// scrape reads /metrics over HTTP, as Prometheus does.
func (s *brokerStack) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	a := s.do(t, http.MethodGet, "/metrics", nil, nil)
	if a.status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", a.status, a.body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(bytes.NewReader(a.body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mf
}

// series names one metric with the labels it must carry.
type series struct {
	name   string
	labels map[string]string
}

// delta is how much one series must move.
type delta struct {
	series
	want float64
}

// value sums the counters, or histogram sample counts, of name whose
// labels include want.
func value(mf map[string]*dto.MetricFamily, s series) float64 {
	var sum float64
	for _, m := range mf[s.name].GetMetric() {
		n := 0
		for _, lp := range m.GetLabel() {
			if v, ok := s.labels[lp.GetName()]; ok && v == lp.GetValue() {
				n++
			}
		}
		if n != len(s.labels) {
			continue
		}
		if m.Counter != nil {
			sum += m.GetCounter().GetValue()
		} else {
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func grants(result string) series {
	return series{"upbroker_grants_total", map[string]string{"profile": "uppy", "backend": "minio", "result": result}}
}

func completions(result string) series {
	return series{"upbroker_completions_total", map[string]string{"profile": "uppy", "backend": "minio", "result": result}}
}

func presigns(op string) series {
	return series{"upbroker_presign_duration_seconds", map[string]string{"backend": "minio", "operation": op}}
}

func backendCalls(op string) series {
	return series{"upbroker_backend_call_duration_seconds", map[string]string{"backend": "minio", "operation": op, "outcome": "ok"}}
}

var (
	grantedBytes  = series{"upbroker_granted_bytes_total", map[string]string{"profile": "uppy", "backend": "minio"}}
	verifiedBytes = series{"upbroker_verified_bytes_total", map[string]string{"profile": "uppy", "backend": "minio"}}
)

// TestThroughBroker runs Companion uploads through the broker that
// `upbroker serve` builds, then scrapes /metrics over HTTP and receives
// the signed webhooks: each step moves the v1 API's counters by exactly
// what happened, and publishes the v1 API's event.
func TestThroughBroker(t *testing.T) {
	m := testenv.StartMinIO(t)
	s := newBrokerStack(t, m)
	png := pngFile(t)
	html := []byte("<!DOCTYPE html><html><script>alert(1)</script></html>")
	tests := []struct {
		name string
		// run returns the key the step was about, or "" when no upload
		// was created.
		run    func(t *testing.T) string
		deltas []delta
		event  events.Type
		reason string
		size   int64
		ctype  string
		meta   map[string]string
	}{
		{
			name: "completed",
			run: func(t *testing.T) string {
				u, etag := s.multipart(t, png)
				if a := s.complete(t, u, etag); a.status != http.StatusOK {
					t.Fatalf("complete: %d %s", a.status, a.body)
				}
				return u.Key
			},
			deltas: []delta{
				{grants("ok"), 1},
				{grantedBytes, maxSize},
				{backendCalls("create_multipart"), 1},
				{presigns("part"), 1},
				{backendCalls("list_parts"), 1},
				{backendCalls("complete_multipart"), 1},
				{backendCalls("read"), 1},
				{completions("ok"), 1},
				{verifiedBytes, float64(len(png))},
			},
			event: events.Completed, size: int64(len(png)), ctype: "image/png",
			meta: map[string]string{"name": "photo.png", "caption": "sunset"},
		},
		{
			name: "rejected",
			run: func(t *testing.T) string {
				u, etag := s.multipart(t, html)
				if a := s.complete(t, u, etag); a.status != http.StatusUnprocessableEntity {
					t.Fatalf("complete of HTML as PNG: %d %s", a.status, a.body)
				}
				return u.Key
			},
			deltas: []delta{
				{grants("ok"), 1},
				{grantedBytes, maxSize},
				{presigns("part"), 1},
				{backendCalls("complete_multipart"), 1},
				{backendCalls("delete"), 1},
				{completions("sniff"), 1},
				{verifiedBytes, 0},
				{completions("ok"), 0},
				{series{"upbroker_rejections_total", map[string]string{"profile": "uppy", "backend": "minio", "reason": "sniff"}}, 1},
			},
			event: events.Rejected, reason: "sniff", size: int64(len(html)), ctype: "image/png",
			meta: map[string]string{"name": "photo.png", "caption": "sunset"},
		},
		{
			name: "aborted",
			run: func(t *testing.T) string {
				u, _ := s.multipart(t, png)
				if a := s.companion(t, http.MethodDelete, u.path(""), nil); a.status != http.StatusOK {
					t.Fatalf("abort: %d %s", a.status, a.body)
				}
				return u.Key
			},
			deltas: []delta{
				{grants("ok"), 1},
				{presigns("part"), 1},
				{backendCalls("abort_multipart"), 1},
				{completions("ok"), 0},
				{backendCalls("complete_multipart"), 0},
			},
			event: events.Aborted,
		},
		{
			// A POST form goes to the store without the broker, so the
			// grant is all that can be counted.
			name: "post policy",
			run: func(t *testing.T) string {
				a := s.companion(t, http.MethodGet, "/params?"+url.Values{"filename": {"a.png"}, "type": {"image/png"}}.Encode(), nil)
				if a.status != http.StatusOK {
					t.Fatalf("params: %d %s", a.status, a.body)
				}
				return ""
			},
			deltas: []delta{
				{grants("ok"), 1},
				{grantedBytes, maxSize},
				{presigns("post"), 1},
				{completions("ok"), 0},
			},
		},
		{
			name: "type refused",
			run: func(t *testing.T) string {
				a := s.companion(t, http.MethodPost, "/multipart", map[string]any{"filename": "a.gif", "type": "image/gif"})
				if a.status != http.StatusUnsupportedMediaType {
					t.Fatalf("create of a GIF: %d %s", a.status, a.body)
				}
				return ""
			},
			deltas: []delta{
				{grants("unsupported_type"), 1},
				{grants("ok"), 0},
				{grantedBytes, 0},
				{backendCalls("create_multipart"), 0},
			},
		},
	}
	var wantEvents int
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.scrape(t)
			key := tc.run(t)
			after := s.scrape(t)
			for _, d := range tc.deltas {
				if got := value(after, d.series) - value(before, d.series); got != d.want {
					t.Errorf("%s%v moved by %v, want %v", d.name, d.labels, got, d.want)
				}
			}
			if tc.event == "" {
				return
			}
			wantEvents++
			var ev events.Event
			deadline := time.Now().Add(waitLimit)
			for found := false; !found; {
				for _, e := range s.hooks.events() {
					if e.Key == key && e.Type == tc.event {
						ev, found = e, true
					}
				}
				if !found && time.Now().After(deadline) {
					t.Fatalf("no %s event for %s within %v; got %+v", tc.event, key, waitLimit, s.hooks.events())
				}
				time.Sleep(20 * time.Millisecond)
			}
			want := events.Event{ID: ev.ID, Time: ev.Time, Type: tc.event, Key: key, Backend: "minio", Profile: "uppy",
				Principal: principalName, Size: tc.size, ContentType: tc.ctype, Metadata: tc.meta, Reason: tc.reason}
			got, _ := json.Marshal(ev)
			exp, _ := json.Marshal(want)
			if ev.ID == "" || ev.Time.IsZero() || !bytes.Equal(got, exp) {
				t.Errorf("event\n got %s\nwant %s", got, exp)
			}
		})
	}
	// Every event was delivered once, and no step published one it should
	// not have (the deliveries above were waited for, and the dispatcher
	// sends in publication order).
	// The receiver keeps an event before it answers, so the success is
	// counted a moment after the event is seen.
	delivered := series{"upbroker_webhook_deliveries_total", map[string]string{"outcome": "success"}}
	mf := s.scrape(t)
	for deadline := time.Now().Add(waitLimit); value(mf, delivered) < float64(wantEvents) && time.Now().Before(deadline); mf = s.scrape(t) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := value(mf, delivered); got != float64(wantEvents) {
		t.Errorf("webhook deliveries: %v successes, want %d (events %+v)", got, wantEvents, s.hooks.events())
	}
	if got := len(s.hooks.events()); got != wantEvents {
		t.Errorf("%d events received, want %d: %+v", got, wantEvents, s.hooks.events())
	}
	// Labels stay bounded: never the principal or a key.
	for name, fam := range mf {
		if !strings.HasPrefix(name, "upbroker_") {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), principalName) || strings.Contains(lp.GetValue(), "/") {
					t.Errorf("%s has label %s=%q", name, lp.GetName(), lp.GetValue())
				}
			}
		}
	}
}

// pngFile is a real 1x1 PNG, so content sniffing accepts it.
func pngFile(t *testing.T) []byte {
	t.Helper()
	return []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")
}
