// Package broker is upbroker's HTTP API: a Gin engine with the v1 routes,
// the policy that decides what may be uploaded, and the stateless tickets
// that tie a grant to its completion. It knows stores only through the
// drivers interface.
package broker

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/ratelimit"
)

// Options are everything a Broker is built from. Only Config and Backends
// are required; the rest default to no-ops.
type Options struct {
	Config *config.Config
	// Backends are the opened drivers, keyed by backend name.
	Backends map[string]drivers.Driver
	// TicketKeys sign tickets: the first signs, all verify.
	TicketKeys [][]byte
	Auth       auth.Authenticator
	Limiter    ratelimit.Limiter
	Events     events.Sink
	Metrics    Metrics
	Logger     *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// Metrics is what the broker reports; metrics.Metrics implements it.
// Labels are bounded: never a key, a principal or a filename.
type Metrics interface {
	// Grant counts a POST /v1/uploads by profile, backend and result
	// ("ok" or an error code), and the bytes granted when ok.
	Grant(profile, backend, result string, bytes int64)
	// Completion counts a completion: reason is "ok" or one of size, type,
	// sniff, checksum, missing; bytes is the verified size when ok.
	Completion(profile, backend, reason string, bytes int64)
	// Presign observes how long signing took, by backend and operation
	// (put, post, part, get, create_multipart).
	Presign(backend, op string, d time.Duration)
	// BackendCall observes one call to a store (stat, read, delete,
	// ping, create_multipart, list_parts, complete_multipart,
	// abort_multipart) and whether it failed.
	BackendCall(backend, op string, d time.Duration, err error)
	// RateLimited counts a refusal by limit ("grants" or "bytes").
	RateLimited(reason string)
	// Handler serves /metrics.
	Handler() http.Handler
}
