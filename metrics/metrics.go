// Package metrics is upbroker's Prometheus instrumentation. It owns its
// own registry, so tests and several brokers in one process never collide
// on the global one, and it implements broker.Metrics without importing
// broker (the broker depends on an interface, not on Prometheus).
//
// Every label value comes from a small, operator-defined set (profile and
// backend names from the config, operation names and reasons from code):
// never an object key, a principal or a filename, which would make the
// series count unbounded.
package metrics

import (
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every upbroker metric.
const Namespace = "upbroker"

// latencyBuckets span 50µs to 10s: signing a URL is a local HMAC
// (microseconds), a store call crosses a network (milliseconds to seconds).
var latencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Metrics holds upbroker's collectors and the registry that serves them.
type Metrics struct {
	reg *prometheus.Registry

	grants            *prometheus.CounterVec
	bytesGranted      *prometheus.CounterVec
	completions       *prometheus.CounterVec
	rejections        *prometheus.CounterVec
	bytesVerified     *prometheus.CounterVec
	presign           *prometheus.HistogramVec
	backendCalls      *prometheus.HistogramVec
	backendErrors     *prometheus.CounterVec
	rateLimited       *prometheus.CounterVec
	webhookDeliveries *prometheus.CounterVec

	// Children of the per-request series, looked up once per label set.
	grantC, completionC    children[prometheus.Counter]
	grantBytesC, verifiedC children[prometheus.Counter]
	presignC, backendCallC children[prometheus.Observer]
}

// labels3 are up to three label values; unused ones are "".
type labels3 struct{ a, b, c string }

// children caches a vector's children by label values. client_golang
// hashes and checks every value on each WithLabelValues; these label sets
// are small and fixed (config names and code constants), so after the
// first use of a set a lookup is one atomic load and one map read. The
// map is copied on write: a miss is rare, a lock on every hit is not.
type children[V any] struct {
	m  atomic.Pointer[map[labels3]V]
	mu sync.Mutex
}

func (c *children[V]) get(k labels3, create func() V) V {
	if m := c.m.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	next := map[labels3]V{}
	if old != nil {
		next = maps.Clone(*old)
	}
	v := create()
	next[k] = v
	c.m.Store(&next)
	return v
}

// New builds the collectors on a fresh registry, with the standard Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "grants_total",
			Help: "Upload grants asked for (POST /v1/uploads and the Companion grants), by profile, backend and result (ok or an error code).",
		}, []string{"profile", "backend", "result"}),
		bytesGranted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "granted_bytes_total",
			Help: "Bytes that successful grants allow to be uploaded, by profile and backend.",
		}, []string{"profile", "backend"}),
		completions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "completions_total",
			Help: "Upload completions, by profile, backend and result (ok, or the rejection reason: size, type, sniff, checksum, missing).",
		}, []string{"profile", "backend", "result"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rejections_total",
			Help: "Completed uploads refused after inspection, by profile, backend and reason (size, type, sniff, checksum, missing).",
		}, []string{"profile", "backend", "reason"}),
		bytesVerified: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "verified_bytes_total",
			Help: "Bytes of uploads that completed and passed verification, by profile and backend.",
		}, []string{"profile", "backend"}),
		presign: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "presign_duration_seconds",
			Help:    "Time to sign one URL, by backend and operation (put, post, part, get, create_multipart).",
			Buckets: latencyBuckets,
		}, []string{"backend", "operation"}),
		backendCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "backend_call_duration_seconds",
			Help:    "Duration of calls to a store, by backend, operation and outcome (ok or error).",
			Buckets: latencyBuckets,
		}, []string{"backend", "operation", "outcome"}),
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "backend_errors_total",
			Help: "Failed calls to a store, by backend and operation.",
		}, []string{"backend", "operation"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "rate_limited_total",
			Help: "Requests refused by the rate limiter, by limit (grants or bytes).",
		}, []string{"limit"}),
		webhookDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts and drops, by outcome (success, retry, failed, dropped).",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.grants, m.bytesGranted, m.completions, m.rejections, m.bytesVerified,
		m.presign, m.backendCalls, m.backendErrors, m.rateLimited, m.webhookDeliveries,
	)
	return m
}

// Registry is the registry the collectors live on, for callers that add
// their own or gather in tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Grant counts a grant request; bytes are added only when it succeeded.
func (m *Metrics) Grant(profile, backend, result string, bytes int64) {
	m.grantC.get(labels3{profile, backend, result}, func() prometheus.Counter {
		return m.grants.WithLabelValues(profile, backend, result)
	}).Inc()
	if result == "ok" && bytes > 0 {
		m.grantBytesC.get(labels3{profile, backend, ""}, func() prometheus.Counter {
			return m.bytesGranted.WithLabelValues(profile, backend)
		}).Add(float64(bytes))
	}
}

// Completion counts a completion. Any reason other than "ok" is also a
// rejection, so alerts can watch one counter.
func (m *Metrics) Completion(profile, backend, reason string, bytes int64) {
	m.completionC.get(labels3{profile, backend, reason}, func() prometheus.Counter {
		return m.completions.WithLabelValues(profile, backend, reason)
	}).Inc()
	if reason != "ok" {
		m.rejections.WithLabelValues(profile, backend, reason).Inc()
		return
	}
	if bytes > 0 {
		m.verifiedC.get(labels3{profile, backend, ""}, func() prometheus.Counter {
			return m.bytesVerified.WithLabelValues(profile, backend)
		}).Add(float64(bytes))
	}
}

// Presign observes the time one signature took.
func (m *Metrics) Presign(backend, op string, d time.Duration) {
	m.presignC.get(labels3{backend, op, ""}, func() prometheus.Observer {
		return m.presign.WithLabelValues(backend, op)
	}).Observe(d.Seconds())
}

// BackendCall observes one store call, and counts it as an error when it
// failed.
func (m *Metrics) BackendCall(backend, op string, d time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "error"
		m.backendErrors.WithLabelValues(backend, op).Inc()
	}
	m.backendCallC.get(labels3{backend, op, outcome}, func() prometheus.Observer {
		return m.backendCalls.WithLabelValues(backend, op, outcome)
	}).Observe(d.Seconds())
}

// RateLimited counts a refusal by the limiter.
func (m *Metrics) RateLimited(reason string) {
	m.rateLimited.WithLabelValues(reason).Inc()
}

// WebhookDelivery counts one delivery attempt or drop; it fits
// webhook.Options.OnDelivery.
func (m *Metrics) WebhookDelivery(outcome string) {
	m.webhookDeliveries.WithLabelValues(outcome).Inc()
}

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg,
		EnableOpenMetrics: true,
	})
}
