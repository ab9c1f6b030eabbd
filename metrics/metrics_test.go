package metrics_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/upbroker/upbroker/broker"
	"github.com/upbroker/upbroker/metrics"
)

// The broker talks to metrics only through this interface.
var _ broker.Metrics = (*metrics.Metrics)(nil)

func TestCounters(t *testing.T) {
	tests := []struct {
		name   string
		record func(m *metrics.Metrics)
		want   string // exposition text of the named metrics
		names  []string
	}{
		{
			name: "ok grant counts the grant and its bytes",
			record: func(m *metrics.Metrics) {
				m.Grant("images", "minio", "ok", 1000)
				m.Grant("images", "minio", "ok", 24)
			},
			names: []string{"upbroker_grants_total", "upbroker_granted_bytes_total"},
			want: `
# HELP upbroker_grants_total Upload grants asked for (POST /v1/uploads and the Companion grants), by profile, backend and result (ok or an error code).
# TYPE upbroker_grants_total counter
upbroker_grants_total{backend="minio",profile="images",result="ok"} 2
# HELP upbroker_granted_bytes_total Bytes that successful grants allow to be uploaded, by profile and backend.
# TYPE upbroker_granted_bytes_total counter
upbroker_granted_bytes_total{backend="minio",profile="images"} 1024
`,
		},
		{
			name: "refused grant grants no bytes",
			record: func(m *metrics.Metrics) {
				m.Grant("images", "local", "too_large", 1<<30)
			},
			names: []string{"upbroker_grants_total", "upbroker_granted_bytes_total"},
			want: `
# HELP upbroker_grants_total Upload grants asked for (POST /v1/uploads and the Companion grants), by profile, backend and result (ok or an error code).
# TYPE upbroker_grants_total counter
upbroker_grants_total{backend="local",profile="images",result="too_large"} 1
`,
		},
		{
			name: "completion verifies bytes, rejection counts its reason",
			record: func(m *metrics.Metrics) {
				m.Completion("docs", "s3", "ok", 500)
				m.Completion("docs", "s3", "sniff", 700)
				m.Completion("docs", "s3", "missing", 0)
			},
			names: []string{"upbroker_completions_total", "upbroker_rejections_total", "upbroker_verified_bytes_total"},
			want: `
# HELP upbroker_completions_total Upload completions, by profile, backend and result (ok, or the rejection reason: size, type, sniff, checksum, missing).
# TYPE upbroker_completions_total counter
upbroker_completions_total{backend="s3",profile="docs",result="missing"} 1
upbroker_completions_total{backend="s3",profile="docs",result="ok"} 1
upbroker_completions_total{backend="s3",profile="docs",result="sniff"} 1
# HELP upbroker_rejections_total Completed uploads refused after inspection, by profile, backend and reason (size, type, sniff, checksum, missing).
# TYPE upbroker_rejections_total counter
upbroker_rejections_total{backend="s3",profile="docs",reason="missing"} 1
upbroker_rejections_total{backend="s3",profile="docs",reason="sniff"} 1
# HELP upbroker_verified_bytes_total Bytes of uploads that completed and passed verification, by profile and backend.
# TYPE upbroker_verified_bytes_total counter
upbroker_verified_bytes_total{backend="s3",profile="docs"} 500
`,
		},
		{
			name: "rate limits and webhooks",
			record: func(m *metrics.Metrics) {
				m.RateLimited("grants")
				m.RateLimited("grants")
				m.RateLimited("bytes")
				m.WebhookDelivery("retry")
				m.WebhookDelivery("success")
				m.WebhookDelivery("dropped")
			},
			names: []string{"upbroker_rate_limited_total", "upbroker_webhook_deliveries_total"},
			want: `
# HELP upbroker_rate_limited_total Requests refused by the rate limiter, by limit (grants or bytes).
# TYPE upbroker_rate_limited_total counter
upbroker_rate_limited_total{limit="bytes"} 1
upbroker_rate_limited_total{limit="grants"} 2
# HELP upbroker_webhook_deliveries_total Webhook delivery attempts and drops, by outcome (success, retry, failed, dropped).
# TYPE upbroker_webhook_deliveries_total counter
upbroker_webhook_deliveries_total{outcome="dropped"} 1
upbroker_webhook_deliveries_total{outcome="retry"} 1
upbroker_webhook_deliveries_total{outcome="success"} 1
`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			tc.record(m)
			if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(tc.want), tc.names...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestHistograms(t *testing.T) {
	m := metrics.New()
	m.Presign("minio", "put", 80*time.Microsecond)
	m.Presign("minio", "put", 3*time.Millisecond)
	m.BackendCall("minio", "stat", 20*time.Millisecond, nil)
	m.BackendCall("minio", "stat", 2*time.Second, errors.New("timeout"))

	if n := testutil.CollectAndCount(m.Registry(), "upbroker_presign_duration_seconds"); n != 1 {
		t.Errorf("presign series = %d, want 1", n)
	}
	if n := testutil.CollectAndCount(m.Registry(), "upbroker_backend_call_duration_seconds"); n != 2 {
		t.Errorf("backend call series = %d, want 2 (ok and error)", n)
	}
	want := `
# HELP upbroker_backend_errors_total Failed calls to a store, by backend and operation.
# TYPE upbroker_backend_errors_total counter
upbroker_backend_errors_total{backend="minio",operation="stat"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "upbroker_backend_errors_total"); err != nil {
		t.Fatal(err)
	}

	// A microsecond signature must land in a bucket below a millisecond,
	// or the histogram would be useless for the local HMAC case.
	body := scrape(t, m)
	for _, line := range []string{
		`upbroker_presign_duration_seconds_bucket{backend="minio",operation="put",le="0.0001"} 1`,
		`upbroker_presign_duration_seconds_bucket{backend="minio",operation="put",le="0.005"} 2`,
		`upbroker_presign_duration_seconds_count{backend="minio",operation="put"} 2`,
		`upbroker_backend_call_duration_seconds_count{backend="minio",operation="stat",outcome="error"} 1`,
	} {
		if !strings.Contains(body, line) {
			t.Errorf("scrape lacks %q", line)
		}
	}
}

func TestHandlerServesRuntimeMetrics(t *testing.T) {
	body := scrape(t, metrics.New())
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(body, name) {
			t.Errorf("scrape lacks %s", name)
		}
	}
}

// Two instances must not share state: each broker (and each test) gets
// its own registry.
func TestInstancesAreIndependent(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.RateLimited("grants")
	if got := testutil.CollectAndCount(b.Registry(), "upbroker_rate_limited_total"); got != 0 {
		t.Fatalf("second registry has %d rate-limit series, want 0", got)
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkDirectUploadMetrics records what one direct upload records:
// a grant, its signature, the completion's stat, and the completion.
func BenchmarkDirectUploadMetrics(b *testing.B) {
	m := metrics.New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Grant("images", "minio", "ok", 4<<20)
			m.Presign("minio", "put", 20*time.Microsecond)
			m.BackendCall("minio", "stat", 300*time.Microsecond, nil)
			m.Completion("images", "minio", "ok", 4<<20)
		}
	})
}

// TestConcurrentFirstUse records label sets for the first time from many
// goroutines at once: every record must land on its own series.
func TestConcurrentFirstUse(t *testing.T) {
	m := metrics.New()
	sets := []struct{ profile, backend, result string }{
		{"images", "minio", "ok"},
		{"images", "minio", "too_large"},
		{"images", "local", "ok"},
		{"docs", "minio", "ok"},
	}
	const perSet = 200
	var wg sync.WaitGroup
	for _, s := range sets {
		for range perSet {
			wg.Go(func() {
				m.Grant(s.profile, s.backend, s.result, 10)
				m.BackendCall(s.backend, s.result, time.Millisecond, nil)
			})
		}
	}
	wg.Wait()
	// series maps "metric{profile,backend,result-or-op}" to its count.
	series := map[string]float64{}
	gathered, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range gathered {
		for _, mm := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mm.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			switch mf.GetName() {
			case "upbroker_grants_total":
				series["grants{"+l["profile"]+","+l["backend"]+","+l["result"]+"}"] = mm.GetCounter().GetValue()
			case "upbroker_granted_bytes_total":
				series["bytes{"+l["profile"]+","+l["backend"]+"}"] = mm.GetCounter().GetValue()
			case "upbroker_backend_call_duration_seconds":
				series["calls{"+l["backend"]+","+l["operation"]+"}"] = float64(mm.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{}
	for _, s := range sets {
		want["grants{"+s.profile+","+s.backend+","+s.result+"}"] = perSet
		want["calls{"+s.backend+","+s.result+"}"] += perSet
		if s.result == "ok" {
			want["bytes{"+s.profile+","+s.backend+"}"] += 10 * perSet
		}
	}
	for _, k := range sortedKeys(want) {
		if series[k] != want[k] {
			t.Errorf("%s = %v, want %v", k, series[k], want[k])
		}
	}
	if len(series) != len(want) {
		t.Errorf("got series %v, want exactly %v", series, want)
	}
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
