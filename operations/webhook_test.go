package operations_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/webhook"
)

const hookSecret = "whsec-ops-0123456789abcdef"

// delivery is one request a receiver got.
type delivery struct {
	EventID   string
	Signature string
	Body      []byte
}

// receiver is an httptest webhook receiver. Each request is recorded
// before answer decides the status, so a test sees every attempt.
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(n int, d delivery) int // n counts attempts from 1
}

func newReceiver(t *testing.T, answer func(n int, d delivery) int) *receiver {
	t.Helper()
	rc := &receiver{answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("webhook request: %s %q, read error %v", r.Method, r.Header.Get("Content-Type"), err)
		}
		d := delivery{EventID: r.Header.Get(webhook.EventIDHeader), Signature: r.Header.Get(webhook.SignatureHeader), Body: body}
		rc.mu.Lock()
		rc.got = append(rc.got, d)
		n := len(rc.got)
		rc.mu.Unlock()
		w.WriteHeader(rc.answer(n, d))
	}))
	// Closed after the dispatcher (cleanups run last in, first out), so
	// that its last tries find the receiver.
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

func hookYAML(url string, evs ...string) string {
	list, _ := json.Marshal(evs)
	return fmt.Sprintf("webhooks: [{url: %q, secret: %q, events: %s}]", url, hookSecret, list)
}

// fastRetries keep the backoff in milliseconds; the jitter and doubling
// are the dispatcher's own.
var fastRetries = webhook.Options{BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond, MaxAttempts: 6}

// decodeEvent verifies the signature with the helper that receivers use,
// then decodes the payload.
func decodeEvent(t *testing.T, d delivery) events.Event {
	t.Helper()
	if err := webhook.Verify(hookSecret, d.Signature, d.Body, 5*time.Minute); err != nil {
		t.Fatalf("signature %q does not verify: %v", d.Signature, err)
	}
	if err := webhook.Verify("another-secret", d.Signature, d.Body, 5*time.Minute); err == nil {
		t.Fatal("the signature verifies under another secret")
	}
	var ev events.Event
	if err := json.Unmarshal(d.Body, &ev); err != nil {
		t.Fatalf("payload: %v: %s", err, d.Body)
	}
	if ev.ID == "" || ev.ID != d.EventID {
		t.Errorf("event id %q, header %s %q", ev.ID, webhook.EventIDHeader, d.EventID)
	}
	if ev.Time.IsZero() {
		t.Error("event has no time")
	}
	return ev
}

// TestWebhookEvents: each way an upload ends delivers its event, signed,
// with the upload's facts.
func TestWebhookEvents(t *testing.T) {
	size := int64(len(pngData))
	tests := []struct {
		name   string
		run    func(t *testing.T, s *stack) grant
		typ    events.Type
		reason string
		meta   map[string]string
	}{
		{"completed", func(t *testing.T, s *stack) grant {
			g := s.grant(t, map[string]any{"filename": "a.png", "content_type": "image/png", "size": size,
				"metadata": map[string]string{"album": "summer", "camera": "x100"}})
			s.upload(t, g, pngData)
			if r := s.complete(t, g); r.Status != http.StatusOK {
				t.Fatalf("complete: %d %s", r.Status, r.Body)
			}
			return g
		}, events.Completed, "", map[string]string{"album": "summer", "camera": "x100"}},
		{"rejected", func(t *testing.T, s *stack) grant {
			g := s.grant(t, map[string]any{"filename": "a.png", "content_type": "image/png", "size": size,
				"metadata": map[string]string{"album": "winter"}})
			s.upload(t, g, bytes.Repeat([]byte{'x'}, len(pngData)))
			if r := s.complete(t, g); r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("complete of a fake PNG: %d %s", r.Status, r.Body)
			}
			return g
		}, events.Rejected, "sniff", map[string]string{"album": "winter"}},
		{"aborted", func(t *testing.T, s *stack) grant {
			g := s.grant(t, map[string]any{"filename": "a.png", "content_type": "image/png", "size": size})
			s.upload(t, g, pngData)
			if r := s.api(t, http.MethodDelete, "/v1/uploads/"+g.ID, nil, nil); r.Status != http.StatusNoContent {
				t.Fatalf("abort: %d %s", r.Status, r.Body)
			}
			return g
		}, events.Aborted, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(int, delivery) int { return http.StatusNoContent })
			s := newStack(t, stackOptions{extra: hookYAML(rc.srv.URL, string(tc.typ)), webhook: fastRetries})
			g := tc.run(t, s)
			eventually(t, "delivery", func() bool { return len(rc.deliveries()) > 0 })
			ds := rc.deliveries()
			if len(ds) != 1 {
				t.Fatalf("%d deliveries, want 1", len(ds))
			}
			ev := decodeEvent(t, ds[0])
			want := events.Event{ID: ev.ID, Time: ev.Time, Type: tc.typ, Key: g.Key, Backend: "local", Profile: "images",
				Principal: principal, Size: size, ContentType: "image/png", Metadata: tc.meta, Reason: tc.reason}
			got, _ := json.Marshal(ev)
			exp, _ := json.Marshal(want)
			if !bytes.Equal(got, exp) {
				t.Errorf("event\n got %s\nwant %s", got, exp)
			}
			eventually(t, "success counted", func() bool {
				return value(scrape(t, s), "upbroker_webhook_deliveries_total", map[string]string{"outcome": "success"}) == 1
			})
		})
	}
}

// TestWebhookRetries: a receiver that fails twice gets the event a third
// time and then no more (one success, two retries, both logged); a
// receiver that answers 400 is not asked again.
func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name     string
		answer   func(n int) int
		attempts int
		outcomes map[string]float64
		logged   map[string]int
	}{
		{"fails twice then succeeds", func(n int) int {
			if n <= 2 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		}, 3, map[string]float64{"retry": 2, "success": 1, "failed": 0},
			map[string]int{"webhook delivery failed, will retry": 2, "webhook delivered": 1}},
		{"4xx is final", func(int) int { return http.StatusBadRequest }, 1,
			map[string]float64{"retry": 0, "success": 0, "failed": 1},
			map[string]int{"webhook delivery failed, giving up": 1, "webhook delivery failed, will retry": 0}},
		{"429 is retried", func(n int) int {
			if n == 1 {
				return http.StatusTooManyRequests
			}
			return http.StatusOK
		}, 2, map[string]float64{"retry": 1, "success": 1}, map[string]int{"webhook delivery failed, will retry": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := newReceiver(t, func(n int, _ delivery) int { return tc.answer(n) })
			s := newStack(t, stackOptions{extra: hookYAML(rc.srv.URL, "upload.completed"), webhook: fastRetries})
			g := s.grant(t, map[string]any{"filename": "a.png", "content_type": "image/png", "size": len(pngData)})
			s.upload(t, g, pngData)
			if r := s.complete(t, g); r.Status != http.StatusOK {
				t.Fatalf("complete: %d %s", r.Status, r.Body)
			}
			// The delivery is over once it succeeded or failed for good;
			// nothing can be attempted after that.
			eventually(t, "the delivery to end", func() bool {
				mf := scrape(t, s)
				return value(mf, "upbroker_webhook_deliveries_total", map[string]string{"outcome": "success"})+
					value(mf, "upbroker_webhook_deliveries_total", map[string]string{"outcome": "failed"}) == 1
			})
			ds := rc.deliveries()
			if len(ds) != tc.attempts {
				t.Fatalf("%d attempts, want %d", len(ds), tc.attempts)
			}
			for _, d := range ds {
				decodeEvent(t, d)
				if d.EventID != ds[0].EventID {
					t.Errorf("a retry changed the event id: %q then %q", ds[0].EventID, d.EventID)
				}
			}
			mf := scrape(t, s)
			for outcome, want := range tc.outcomes {
				if got := value(mf, "upbroker_webhook_deliveries_total", map[string]string{"outcome": outcome}); got != want {
					t.Errorf("webhook_deliveries_total{outcome=%q} = %v, want %v", outcome, got, want)
				}
			}
			for msg, want := range tc.logged {
				if got := len(s.logLines(t, msg)); got != want {
					t.Errorf("%d log lines %q, want %d", got, msg, want)
				}
			}
		})
	}
}

// TestCompleteDoesNotWaitForReceiver: the receiver holds the delivery
// until the complete request has been answered. Were delivery
// synchronous, the complete would never answer and the client's deadline
// would fail the test.
func TestCompleteDoesNotWaitForReceiver(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	rc := newReceiver(t, func(int, delivery) int {
		once.Do(func() { close(arrived) })
		<-release
		return http.StatusOK
	})
	s := newStack(t, stackOptions{extra: hookYAML(rc.srv.URL, "upload.completed"), webhook: fastRetries})
	// Registered last, so it runs first: the dispatcher's Close and the
	// receiver's would otherwise wait for a held request.
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })

	g := s.grant(t, map[string]any{"filename": "a.png", "content_type": "image/png", "size": len(pngData)})
	s.upload(t, g, pngData)
	if r := s.complete(t, g); r.Status != http.StatusOK {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	// The complete has answered; the delivery is (or will be) held.
	select {
	case <-arrived:
	case <-time.After(waitLimit):
		t.Fatal("the event never reached the receiver")
	}
	if n := value(scrape(t, s), "upbroker_webhook_deliveries_total", map[string]string{"outcome": "success"}); n != 0 {
		t.Fatalf("a held delivery counted as a success: %v", n)
	}
	releaseOnce.Do(func() { close(release) })
	eventually(t, "the released delivery to succeed", func() bool {
		return value(scrape(t, s), "upbroker_webhook_deliveries_total", map[string]string{"outcome": "success"}) == 1
	})
	if ds := rc.deliveries(); len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1", len(ds))
	}
}
