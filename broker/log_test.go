package broker_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/upbroker/upbroker/broker"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestAccessLog: one line per request with the route template, never the
// raw path (which holds tickets) nor the signing keys.
func TestAccessLog(t *testing.T) {
	var buf syncBuf
	h := newHarness(t, func(o *broker.Options) { o.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	g := h.create(imageReq(len(pngData)), "alice")
	h.put(g, pngData)
	h.do("POST", g.CompleteURL, nil, map[string]string{"X-Test-User": "alice", "X-Request-ID": "req-42"})
	out := buf.String()
	if n := strings.Count(out, `"msg":"request"`); n != 3 {
		t.Fatalf("%d access lines, want 3 (create, blob PUT, complete):\n%s", n, out)
	}
	for _, want := range []string{`"route":"/v1/uploads/:id/complete"`, `"request_id":"req-42"`, `"principal":"alice"`, `"status":200`, `"route":"/v1/uploads"`, `"route":"/v1/blob/local/*path"`, `"latency_ms":`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	for _, secret := range []string{g.ID, string(ticketKey)} {
		if strings.Contains(out, secret) {
			t.Errorf("log holds a ticket or key:\n%s", out)
		}
	}
}
