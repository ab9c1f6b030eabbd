package operations_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/upbroker/upbroker/internal/testenv"
)

// TestReadyzFollowsMinIO stops the MinIO server under a running broker
// and starts it again: /readyz answers 200, then 503 naming minio (and
// only minio: the file backend is still fine), then 200 again. /healthz,
// which must stay cheap, answers 200 throughout.
func TestReadyzFollowsMinIO(t *testing.T) {
	m := testenv.StartMinIO(t)
	s := newStack(t, stackOptions{minio: m})

	type ready struct {
		Status   string   `json:"status"`
		Backends []string `json:"backends"`
	}
	wantReady := func(t *testing.T) {
		t.Helper()
		r := s.do(t, http.MethodGet, "/readyz", nil, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("readyz: %d %s", r.Status, r.Body)
		}
		var got ready
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Status != "ready" || !slices.Equal(got.Backends, []string{"local", "minio"}) {
			t.Fatalf("readyz body %+v", got)
		}
	}
	wantHealthy := func(t *testing.T) {
		t.Helper()
		if r := s.do(t, http.MethodGet, "/healthz", nil, nil); r.Status != http.StatusOK {
			t.Fatalf("healthz: %d %s", r.Status, r.Body)
		}
	}

	steps := []struct {
		name  string
		act   func(t *testing.T)
		check func(t *testing.T)
	}{
		{"both backends answer", func(*testing.T) {}, wantReady},
		{"minio stopped", func(*testing.T) { m.Stop() }, func(t *testing.T) {
			r := s.do(t, http.MethodGet, "/readyz", nil, nil)
			if r.Status != http.StatusServiceUnavailable || errCode(t, r) != "backend_unavailable" {
				t.Fatalf("readyz with minio stopped: %d %s", r.Status, r.Body)
			}
			var e struct{ Error struct{ Message string } }
			_ = json.Unmarshal(r.Body, &e)
			if !strings.Contains(e.Error.Message, "minio") || strings.Contains(e.Error.Message, "local") {
				t.Fatalf("the message must name minio and only minio: %q", e.Error.Message)
			}
			if ms := s.logLines(t, "backend not ready"); len(ms) == 0 || ms[len(ms)-1]["backend"] != "minio" {
				t.Errorf("no log line naming the failed backend: %v", ms)
			}
		}},
		{"healthz unaffected", func(*testing.T) {}, wantHealthy},
		// Restart waits for MinIO's own readiness probe; the driver's
		// connection pool may still need a moment, so poll to a deadline.
		{"minio restarted", func(t *testing.T) { m.Restart(t) }, func(t *testing.T) {
			eventually(t, "readyz 200 after restart", func() bool {
				return s.do(t, http.MethodGet, "/readyz", nil, nil).Status == http.StatusOK
			})
			wantReady(t)
		}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			st.act(t)
			st.check(t)
		})
	}

	// The failed pings are counted by backend and operation, never more.
	mf := scrape(t, s)
	if got := value(mf, "upbroker_backend_errors_total", map[string]string{"backend": "minio", "operation": "ping"}); got < 1 {
		t.Errorf("backend_errors_total{minio,ping} = %v, want at least 1", got)
	}
	if got := value(mf, "upbroker_backend_errors_total", map[string]string{"backend": "local", "operation": "ping"}); got != 0 {
		t.Errorf("backend_errors_total{local,ping} = %v, want 0", got)
	}
}
