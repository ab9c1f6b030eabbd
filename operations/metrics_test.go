package operations_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads /metrics over HTTP, as Prometheus does, and parses it.
func scrape(t *testing.T, s *stack) map[string]*dto.MetricFamily {
	t.Helper()
	r := s.do(t, http.MethodGet, "/metrics", nil, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", r.Status, r.Body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mf
}

// matches reports whether m carries every label of want.
func matches(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// value sums the counters (or histogram sample counts) of a family whose
// labels match want; 0 when there are none.
func value(mf map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	for _, m := range mf[name].GetMetric() {
		if !matches(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestMetricsAfterTraffic drives a grant, a completion, two rejections
// (a completion before the upload, and bytes that are not the declared
// PNG) and a rate-limited grant through the real broker, then scrapes
// /metrics over HTTP and checks that each counter moved by exactly what
// happened, and that no label value holds a key, the principal or a
// filename.
func TestMetricsAfterTraffic(t *testing.T) {
	// A burst of 4 grants at 1 a minute: the fifth grant within the minute
	// is refused. The test asks until refused (bounded), so a slow machine
	// that earns a token back only shifts which grant it is.
	s := newStack(t, stackOptions{extra: "rate_limit: {store: memory, grants_per_minute: 1, burst: 4}"})
	const filename = "holiday-snapshot-k2v9.png"
	size := int64(len(pngData))
	req := map[string]any{"filename": filename, "content_type": "image/png", "size": size}

	// 1. A grant, an upload and a completion.
	ok := s.grant(t, req)
	s.upload(t, ok, pngData)
	if r := s.complete(t, ok); r.Status != http.StatusOK {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	// 2. A completion before anything was uploaded: missing.
	early := s.grant(t, req)
	if r := s.complete(t, early); r.Status != http.StatusConflict || errCode(t, r) != "not_uploaded" {
		t.Fatalf("complete before upload: %d %s", r.Status, r.Body)
	}
	// 3. Bytes of the granted size that are not a PNG: sniff.
	fake := s.grant(t, req)
	s.upload(t, fake, bytes.Repeat([]byte("<html>"), len(pngData)/6+1)[:len(pngData)])
	if r := s.complete(t, fake); r.Status != http.StatusUnprocessableEntity || errCode(t, r) != "rejected" {
		t.Fatalf("complete of a fake PNG: %d %s", r.Status, r.Body)
	}
	// 4. Grants until the limiter refuses one.
	granted := 3
	for limited := false; !limited; {
		if granted > 10 {
			t.Fatalf("no grant refused after %d", granted)
		}
		r := s.api(t, http.MethodPost, "/v1/uploads", req, nil)
		switch r.Status {
		case http.StatusCreated:
			granted++
		case http.StatusTooManyRequests:
			if r.Header.Get("Retry-After") == "" || errCode(t, r) != "rate_limited" {
				t.Fatalf("rate limited without Retry-After or code: %v %s", r.Header, r.Body)
			}
			limited = true
		default:
			t.Fatalf("grant: %d %s", r.Status, r.Body)
		}
	}

	mf := scrape(t, s)
	img := map[string]string{"profile": "images", "backend": "local"}
	with := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range img {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	checks := []struct {
		name    string
		labels  map[string]string
		want    float64
		atLeast bool
	}{
		{"upbroker_grants_total", with(map[string]string{"result": "ok"}), float64(granted), false},
		{"upbroker_grants_total", with(map[string]string{"result": "rate_limited"}), 1, false},
		{"upbroker_granted_bytes_total", img, float64(granted) * float64(size), false},
		{"upbroker_completions_total", with(map[string]string{"result": "ok"}), 1, false},
		{"upbroker_completions_total", with(map[string]string{"result": "missing"}), 1, false},
		{"upbroker_completions_total", with(map[string]string{"result": "sniff"}), 1, false},
		{"upbroker_rejections_total", with(map[string]string{"reason": "missing"}), 1, false},
		{"upbroker_rejections_total", with(map[string]string{"reason": "sniff"}), 1, false},
		{"upbroker_rejections_total", with(map[string]string{"reason": "size"}), 0, false},
		{"upbroker_verified_bytes_total", img, float64(size), false},
		{"upbroker_rate_limited_total", map[string]string{"limit": "grants"}, 1, false},
		// One signature per granted upload; the file driver signs PUTs.
		{"upbroker_presign_duration_seconds", map[string]string{"backend": "local", "operation": "put"}, float64(granted), false},
		// Completions stat the object; the sniff reads it; the
		// rejection deletes it.
		{"upbroker_backend_call_duration_seconds", map[string]string{"backend": "local", "operation": "stat"}, 3, false},
		{"upbroker_backend_call_duration_seconds", map[string]string{"backend": "local", "operation": "read"}, 2, false},
		{"upbroker_backend_call_duration_seconds", map[string]string{"backend": "local", "operation": "delete", "outcome": "ok"}, 1, false},
		// The standard collectors are there.
		{"go_goroutines", nil, 1, true},
		{"process_cpu_seconds_total", nil, 0, true},
	}
	for _, c := range checks {
		if _, ok := mf[c.name]; !ok {
			t.Errorf("%s is not exposed", c.name)
			continue
		}
		got := value(mf, c.name, c.labels)
		if c.atLeast && got < c.want || !c.atLeast && got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// Bounded labels: nothing a client chose or that names one upload.
	forbidden := []string{principal, filename, strings.TrimSuffix(filename, ".png"), ok.Key, early.Key, fake.Key, ok.ID}
	for name, fam := range mf {
		for _, m := range fam.GetMetric() {
			for _, lp := range m.GetLabel() {
				for _, f := range forbidden {
					if strings.Contains(lp.GetValue(), f) {
						t.Errorf("%s{%s=%q} holds %q", name, lp.GetName(), lp.GetValue(), f)
					}
				}
			}
		}
	}
}
