// Package webhook delivers upload events to HTTP receivers, signed so
// they can check who sent them and when, and retried with backoff.
//
// Delivery guarantee: at least once while the process lives. An event is
// held in memory only: it is retried until the receiver answers 2xx, the
// attempts run out, the receiver answers a 4xx other than 408 or 429, or
// the process stops (Close gives every pending delivery one last try).
// A receiver may therefore see an event twice (a 2xx lost on the way
// back), and must drop duplicates by the Upbroker-Event-Id header. Events
// published while the queue is full, or after a crash, are lost.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/internal/version"
)

// Delivery outcomes, as passed to Options.OnDelivery.
const (
	OutcomeSuccess = "success" // the receiver answered 2xx
	OutcomeRetry   = "retry"   // an attempt failed; another is scheduled
	OutcomeFailed  = "failed"  // given up: a final 4xx, attempts exhausted, or shut down
	OutcomeDropped = "dropped" // never attempted: queue full or dispatcher closed
)

// Defaults: 6 attempts with delays of about 20s, 40s, 80s, 160s and 300s
// spread a delivery over about ten minutes, long enough to ride out a
// receiver's deploy or restart.
const (
	DefaultQueueSize   = 1024
	DefaultMaxAttempts = 6
	DefaultBaseDelay   = 20 * time.Second
	DefaultMaxDelay    = 5 * time.Minute
	defaultTimeout     = 10 * time.Second
	workers            = 4
)

// Options tune a Dispatcher; the zero value gives the defaults.
type Options struct {
	Logger *slog.Logger
	// OnDelivery is called once per attempt or drop with its outcome;
	// metrics.Metrics.WebhookDelivery fits.
	OnDelivery func(outcome string)
	// Client sends the requests. The default has a 10s timeout and does
	// not follow redirects (a redirect is the receiver's misconfiguration,
	// and following it would send the signed event somewhere else).
	Client *http.Client
	// QueueSize bounds the deliveries held at once, waiting, in flight or
	// between retries.
	QueueSize int
	// MaxAttempts counts the first try.
	MaxAttempts int
	// BaseDelay is the wait before the first retry; each retry doubles it,
	// up to MaxDelay, with ±20% jitter so receivers are not hit in step.
	BaseDelay, MaxDelay time.Duration
}

type hook struct {
	url    string
	logURL string // without query or credentials: tokens must not reach logs
	secret string
	events []string // empty: every event
}

func (h *hook) wants(t events.Type) bool {
	return len(h.events) == 0 || slices.Contains(h.events, string(t))
}

type job struct {
	hook     *hook
	id       string
	typ      events.Type
	body     []byte
	attempts int  // attempts made so far
	final    bool // the shutdown's last try: no retry after it
}

// Dispatcher queues events and delivers them in the background. It is an
// events.Sink.
type Dispatcher struct {
	hooks  []*hook
	opts   Options
	log    *slog.Logger
	ready  chan *job
	ctx    context.Context // cancelled when Close runs out of time
	cancel context.CancelFunc
	done   chan struct{} // closed when every worker has returned

	mu      sync.Mutex
	pending int
	closed  bool
	waiting map[*job]*time.Timer
}

var _ events.Sink = (*Dispatcher)(nil)

// Known event types a webhook may subscribe to.
var knownEvents = []string{string(events.Completed), string(events.Rejected), string(events.Aborted)}

// NewDispatcher checks the hooks and starts the delivery workers. With no
// hooks it still works, and Publish does nothing.
func NewDispatcher(hooks []config.Webhook, opts Options) (*Dispatcher, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.OnDelivery == nil {
		opts.OnDelivery = func(string) {}
	}
	if opts.Client == nil {
		opts.Client = &http.Client{
			Timeout: defaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = DefaultBaseDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.MaxDelay < opts.BaseDelay {
		opts.MaxDelay = opts.BaseDelay
	}
	d := &Dispatcher{
		opts:    opts,
		log:     opts.Logger.With("component", "webhook"),
		ready:   make(chan *job, opts.QueueSize),
		done:    make(chan struct{}),
		waiting: map[*job]*time.Timer{},
	}
	for i, h := range hooks {
		u, err := url.Parse(h.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("webhooks[%d].url: want an absolute http or https URL, got %q", i, redactURL(h.URL))
		}
		if h.Secret == "" {
			return nil, fmt.Errorf("webhooks[%d].secret: required, receivers check signatures with it", i)
		}
		for j, e := range h.Events {
			if !slices.Contains(knownEvents, e) {
				return nil, fmt.Errorf("webhooks[%d].events[%d]: unknown event %q (want one of %v)", i, j, e, knownEvents)
			}
		}
		d.hooks = append(d.hooks, &hook{
			url:    h.URL,
			logURL: (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(),
			secret: h.Secret,
			events: slices.Clone(h.Events),
		})
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range d.ready {
				d.attempt(j)
			}
		}()
	}
	go func() { wg.Wait(); close(d.done) }()
	return d, nil
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// Publish queues ev for every hook subscribed to its type and returns at
// once. It fills in ev.ID (random) and ev.Time (now) when empty. When the
// queue is full the delivery is dropped, logged and counted: a slow
// receiver must never hold up an upload.
func (d *Dispatcher) Publish(ev events.Event) {
	if ev.ID == "" {
		ev.ID = "evt_" + uuid.NewString()
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	var body []byte
	for _, h := range d.hooks {
		if !h.wants(ev.Type) {
			continue
		}
		if body == nil {
			var err error
			if body, err = json.Marshal(ev); err != nil {
				d.log.Error("webhook event not encodable", "event_id", ev.ID, "type", ev.Type, "err", err)
				return
			}
		}
		d.enqueue(&job{hook: h, id: ev.ID, typ: ev.Type, body: body})
	}
}

func (d *Dispatcher) enqueue(j *job) {
	d.mu.Lock()
	reason := ""
	switch {
	case d.closed:
		reason = "dispatcher closed"
	case d.pending >= d.opts.QueueSize:
		reason = "queue full"
	default:
		d.pending++
		// Cannot block: ready holds QueueSize and pending counts every
		// job, wherever it is.
		d.ready <- j
	}
	d.mu.Unlock()
	if reason != "" {
		d.log.Warn("webhook event dropped", "reason", reason, "event_id", j.id, "type", j.typ,
			"url", j.hook.logURL, "queue_size", d.opts.QueueSize)
		d.opts.OnDelivery(OutcomeDropped)
	}
}

// attempt sends one job once and decides what follows.
func (d *Dispatcher) attempt(j *job) {
	j.attempts++
	status, retryAfter, err := d.send(j)
	log := d.log.With("event_id", j.id, "type", j.typ, "url", j.hook.logURL, "attempt", j.attempts)
	if err == nil {
		log.Info("webhook delivered", "status", status)
		d.finish(OutcomeSuccess)
		return
	}
	retryable := status == 0 || status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
	if !retryable || j.final || j.attempts >= d.opts.MaxAttempts {
		why := "attempts exhausted"
		switch {
		case !retryable:
			why = "receiver refused it"
		case j.final:
			why = "shutting down"
		}
		log.Error("webhook delivery failed, giving up", "status", status, "reason", why, "err", err)
		d.finish(OutcomeFailed)
		return
	}
	delay := d.backoff(j.attempts)
	if retryAfter > 0 {
		delay = min(retryAfter, d.opts.MaxDelay)
	}
	d.mu.Lock()
	if d.closed {
		// Close already handed out the last tries; this one was it.
		d.mu.Unlock()
		log.Error("webhook delivery failed, giving up", "status", status, "reason", "shutting down", "err", err)
		d.finish(OutcomeFailed)
		return
	}
	d.waiting[j] = time.AfterFunc(delay, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		// Close may have taken the job already, to send it at once.
		if _, ok := d.waiting[j]; ok {
			delete(d.waiting, j)
			d.ready <- j
		}
	})
	d.mu.Unlock()
	log.Warn("webhook delivery failed, will retry", "status", status, "retry_in", delay.Round(time.Millisecond), "err", err)
	d.opts.OnDelivery(OutcomeRetry)
}

// finish ends a job; the last one out after Close stops the workers.
func (d *Dispatcher) finish(outcome string) {
	d.opts.OnDelivery(outcome)
	d.mu.Lock()
	d.pending--
	if d.closed && d.pending == 0 {
		close(d.ready)
	}
	d.mu.Unlock()
}

// backoff is the wait after the n-th failed attempt.
func (d *Dispatcher) backoff(n int) time.Duration {
	delay := d.opts.MaxDelay
	if shift := n - 1; shift < 30 {
		if b := d.opts.BaseDelay << shift; b > 0 && b < delay {
			delay = b
		}
	}
	jitter := 0.8 + 0.4*rand.Float64()
	return min(time.Duration(float64(delay)*jitter), d.opts.MaxDelay)
}

// send makes one request. err is nil only for a 2xx; status is 0 when no
// answer came back.
func (d *Dispatcher) send(j *job) (status int, retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, j.hook.url, bytes.NewReader(j.body))
	if err != nil {
		return 0, 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "upbroker-webhook/"+version.Version)
	req.Header.Set(EventIDHeader, j.id)
	// Signed at each attempt, so a retry carries a fresh timestamp and
	// passes the receiver's freshness check.
	req.Header.Set(SignatureHeader, Sign(j.hook.secret, time.Now(), j.body))
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		// The URL may hold a token: report the error without it.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return 0, 0, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	// Drain a little so the connection can be reused; the body itself
	// means nothing to us.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, nil
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return resp.StatusCode, retryAfter, fmt.Errorf("receiver answered %s", resp.Status)
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Close stops accepting events and gives every pending delivery a last
// try now, including those waiting for a retry. It returns when all have
// been tried, or when ctx ends, in which case requests still in flight are
// cancelled, what is left is given up, and the error says how many.
// Calling Close again waits the same way.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		for j, t := range d.waiting {
			t.Stop()
			delete(d.waiting, j)
			j.final = true
			d.ready <- j
		}
		if d.pending == 0 {
			close(d.ready)
		}
	}
	d.mu.Unlock()

	select {
	case <-d.done:
		d.cancel()
		return nil
	case <-ctx.Done():
	}
	d.mu.Lock()
	left := d.pending
	d.mu.Unlock()
	// Cancelled requests fail at once, so the workers empty the queue
	// quickly and every job is accounted for (as failed).
	d.cancel()
	<-d.done
	return fmt.Errorf("webhook: %d deliveries not completed before shutdown: %w", left, ctx.Err())
}
