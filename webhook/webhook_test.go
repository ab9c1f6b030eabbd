package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/webhook"
)

const secret = "whsec-test"

// receiver is an httptest server that answers with a scripted list of
// statuses (the last one repeats) and records what it got.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	header   http.Header // extra response headers
	reqs     []recorded
	block    chan struct{} // when set, each request waits for it to close
	got      chan struct{} // one send per request received
}

type recorded struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	t.Helper()
	r := &receiver{statuses: statuses, got: make(chan struct{}, 100), header: http.Header{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, recorded{header: req.Header.Clone(), body: body})
		status := r.statuses[min(len(r.reqs)-1, len(r.statuses)-1)]
		block := r.block
		for k, v := range r.header {
			w.Header()[k] = v
		}
		r.mu.Unlock()
		r.got <- struct{}{}
		if block != nil {
			select {
			case <-block:
			case <-req.Context().Done():
			}
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.reqs...)
}

// outcomes records OnDelivery calls and lets a test wait for them.
type outcomes struct {
	mu     sync.Mutex
	counts map[string]int
	ch     chan string
}

func newOutcomes() *outcomes {
	return &outcomes{counts: map[string]int{}, ch: make(chan string, 100)}
}

func (o *outcomes) record(outcome string) {
	o.mu.Lock()
	o.counts[outcome]++
	o.mu.Unlock()
	o.ch <- outcome
}

func (o *outcomes) get() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for k, v := range o.counts {
		out[k] = v
	}
	return out
}

// waitFor blocks until outcome has been reported; the long deadline only
// guards against a hang, it asserts nothing about speed.
func (o *outcomes) waitFor(t *testing.T, outcome string) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case got := <-o.ch:
			if got == outcome {
				return
			}
		case <-deadline:
			t.Fatalf("no %q outcome reported; so far %v", outcome, o.get())
		}
	}
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

func newDispatcher(t *testing.T, hooks []config.Webhook, opts webhook.Options) *webhook.Dispatcher {
	t.Helper()
	d, err := webhook.NewDispatcher(hooks, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	return d
}

func completed() events.Event {
	return events.Event{
		Type: events.Completed, Key: "images/u-1/abc.png", Backend: "minio", Profile: "images",
		Principal: "u-1", Size: 42, ContentType: "image/png", Metadata: map[string]string{"album": "x"},
	}
}

func TestDeliverySignedAndVerifiable(t *testing.T) {
	rcv := newReceiver(t, http.StatusNoContent)
	out := newOutcomes()
	d := newDispatcher(t, []config.Webhook{{URL: rcv.URL + "/hook?token=abc", Secret: secret}},
		webhook.Options{OnDelivery: out.record})

	d.Publish(completed())
	out.waitFor(t, webhook.OutcomeSuccess)

	reqs := rcv.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if err := webhook.Verify(secret, r.header.Get("Upbroker-Signature"), r.body, 5*time.Minute); err != nil {
		t.Fatalf("signature does not verify: %v (header %q)", err, r.header.Get("Upbroker-Signature"))
	}
	if err := webhook.Verify("other-secret", r.header.Get("Upbroker-Signature"), r.body, 5*time.Minute); !errors.Is(err, webhook.ErrSignatureMismatch) {
		t.Fatalf("wrong secret: err = %v, want ErrSignatureMismatch", err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var ev events.Event
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatalf("payload is not an event: %v", err)
	}
	if ev.ID == "" || ev.ID != r.header.Get("Upbroker-Event-Id") {
		t.Errorf("event id %q, header %q: want the same, non-empty", ev.ID, r.header.Get("Upbroker-Event-Id"))
	}
	if ev.Time.IsZero() {
		t.Error("event time not set")
	}
	want := completed()
	want.ID, want.Time = ev.ID, ev.Time
	if ev.Key != want.Key || ev.Size != want.Size || ev.Principal != want.Principal || ev.Metadata["album"] != "x" || ev.Type != want.Type {
		t.Errorf("payload = %+v, want %+v", ev, want)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name        string
		statuses    []int
		maxAttempts int
		header      http.Header
		wantReqs    int
		wantLast    string
		want        map[string]int
		wantRetries int // "will retry" log lines
	}{
		{"fails twice then succeeds", []int{500, 503, 200}, 6, nil, 3, webhook.OutcomeSuccess,
			map[string]int{"retry": 2, "success": 1}, 2},
		{"400 is not retried", []int{400, 200}, 6, nil, 1, webhook.OutcomeFailed,
			map[string]int{"failed": 1}, 0},
		{"401 is not retried", []int{401, 200}, 6, nil, 1, webhook.OutcomeFailed,
			map[string]int{"failed": 1}, 0},
		{"410 is not retried", []int{410, 200}, 6, nil, 1, webhook.OutcomeFailed,
			map[string]int{"failed": 1}, 0},
		{"408 is retried", []int{408, 200}, 6, nil, 2, webhook.OutcomeSuccess,
			map[string]int{"retry": 1, "success": 1}, 1},
		// Retry-After asks for an hour; MaxDelay caps it, so the retry
		// still comes within the test.
		{"429 is retried, Retry-After capped", []int{429, 200}, 6, http.Header{"Retry-After": {"3600"}}, 2, webhook.OutcomeSuccess,
			map[string]int{"retry": 1, "success": 1}, 1},
		{"attempts run out", []int{500}, 3, nil, 3, webhook.OutcomeFailed,
			map[string]int{"retry": 2, "failed": 1}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rcv := newReceiver(t, tc.statuses...)
			for k, v := range tc.header {
				rcv.header[k] = v
			}
			out := newOutcomes()
			logs := &syncBuffer{}
			d := newDispatcher(t, []config.Webhook{{URL: rcv.URL, Secret: secret}}, webhook.Options{
				Logger:      slog.New(slog.NewJSONHandler(logs, nil)),
				OnDelivery:  out.record,
				MaxAttempts: tc.maxAttempts,
				BaseDelay:   time.Millisecond,
				MaxDelay:    5 * time.Millisecond,
			})
			d.Publish(completed())
			out.waitFor(t, tc.wantLast)
			// Close waits for anything else in flight, so the counts
			// below are final.
			if err := d.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := out.get(); !equalCounts(got, tc.want) {
				t.Errorf("outcomes = %v, want %v", got, tc.want)
			}
			reqs := rcv.requests()
			if len(reqs) != tc.wantReqs {
				t.Fatalf("receiver got %d requests, want %d", len(reqs), tc.wantReqs)
			}
			for i, r := range reqs {
				if r.header.Get("Upbroker-Event-Id") != reqs[0].header.Get("Upbroker-Event-Id") {
					t.Errorf("attempt %d has another event id", i+1)
				}
				if err := webhook.Verify(secret, r.header.Get("Upbroker-Signature"), r.body, time.Minute); err != nil {
					t.Errorf("attempt %d: %v", i+1, err)
				}
			}
			if got := strings.Count(logs.String(), "will retry"); got != tc.wantRetries {
				t.Errorf("logged %d retries, want %d:\n%s", got, tc.wantRetries, logs.String())
			}
			if strings.Contains(logs.String(), secret) {
				t.Error("the secret reached the logs")
			}
		})
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestFullQueueDrops(t *testing.T) {
	rcv := newReceiver(t, http.StatusOK)
	rcv.block = make(chan struct{})
	out := newOutcomes()
	logs := &syncBuffer{}
	d := newDispatcher(t, []config.Webhook{{URL: rcv.URL, Secret: secret}}, webhook.Options{
		Logger: slog.New(slog.NewJSONHandler(logs, nil)), OnDelivery: out.record, QueueSize: 1,
	})

	d.Publish(completed()) // held by the blocked receiver: the queue is full
	d.Publish(completed())
	out.waitFor(t, webhook.OutcomeDropped)
	if !strings.Contains(logs.String(), "webhook event dropped") || !strings.Contains(logs.String(), "queue full") {
		t.Errorf("drop not logged:\n%s", logs.String())
	}
	close(rcv.block)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := out.get(), map[string]int{"dropped": 1, "success": 1}; !equalCounts(got, want) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
	if n := len(rcv.requests()); n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
}

func TestCloseGivesALastTry(t *testing.T) {
	rcv := newReceiver(t, http.StatusServiceUnavailable, http.StatusOK)
	out := newOutcomes()
	d := newDispatcher(t, []config.Webhook{{URL: rcv.URL, Secret: secret}}, webhook.Options{
		OnDelivery: out.record,
		// The retry would come only after an hour: only Close can bring it.
		BaseDelay: time.Hour, MaxDelay: time.Hour,
	})
	d.Publish(completed())
	out.waitFor(t, webhook.OutcomeRetry)

	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := out.get(), map[string]int{"retry": 1, "success": 1}; !equalCounts(got, want) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
	if n := len(rcv.requests()); n != 2 {
		t.Errorf("receiver got %d requests, want 2", n)
	}

	// Closed: later events are dropped, not sent.
	d.Publish(completed())
	out.waitFor(t, webhook.OutcomeDropped)
	if n := len(rcv.requests()); n != 2 {
		t.Errorf("receiver got %d requests after Close, want 2", n)
	}
}

func TestCloseBoundedByContext(t *testing.T) {
	rcv := newReceiver(t, http.StatusOK)
	rcv.block = make(chan struct{}) // never answers until cancelled
	t.Cleanup(func() { close(rcv.block) })
	out := newOutcomes()
	d := newDispatcher(t, []config.Webhook{{URL: rcv.URL, Secret: secret}}, webhook.Options{OnDelivery: out.record})
	d.Publish(completed())
	<-rcv.got

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the shutdown timeout has already run out
	err := d.Close(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	if got, want := out.get(), map[string]int{"failed": 1}; !equalCounts(got, want) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
}

func TestSubscriptions(t *testing.T) {
	onlyCompleted := newReceiver(t, http.StatusOK)
	all := newReceiver(t, http.StatusOK)
	rejectedAndAborted := newReceiver(t, http.StatusOK)
	d := newDispatcher(t, []config.Webhook{
		{URL: onlyCompleted.URL, Secret: secret, Events: []string{"upload.completed"}},
		{URL: all.URL, Secret: secret},
		{URL: rejectedAndAborted.URL, Secret: secret, Events: []string{"upload.rejected", "upload.aborted"}},
	}, webhook.Options{})

	for _, typ := range []events.Type{events.Rejected, events.Aborted, events.Completed} {
		ev := completed()
		ev.Type = typ
		d.Publish(ev)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rcv  *receiver
		want int
	}{{"completed only", onlyCompleted, 1}, {"all", all, 3}, {"rejected and aborted", rejectedAndAborted, 2}} {
		if n := len(tc.rcv.requests()); n != tc.want {
			t.Errorf("%s: got %d events, want %d", tc.name, n, tc.want)
		}
	}
}

func TestNewDispatcherValidates(t *testing.T) {
	tests := []struct {
		name string
		hook config.Webhook
		want string
	}{
		{"relative url", config.Webhook{URL: "/hook", Secret: "s"}, "webhooks[0].url"},
		{"ftp url", config.Webhook{URL: "ftp://example.com/x", Secret: "s"}, "webhooks[0].url"},
		{"no secret", config.Webhook{URL: "https://example.com/x"}, "webhooks[0].secret"},
		{"unknown event", config.Webhook{URL: "https://example.com/x", Secret: "s", Events: []string{"upload.done"}}, "webhooks[0].events[0]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := webhook.NewDispatcher([]config.Webhook{tc.hook}, webhook.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}
