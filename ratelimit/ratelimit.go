// Package ratelimit bounds how many grants, and how many bytes, each
// principal may take: a GCRA limit on grants per minute with a burst, and a
// daily byte quota reserved at grant time. Stores: memory and Redis.
package ratelimit

import (
	"context"
	"time"
)

// Decision is a limiter's answer to one request.
type Decision struct {
	Allowed bool
	// RetryAfter is how long to wait before asking again, when refused.
	RetryAfter time.Duration
	// Reason is "grants" or "bytes" when refused: which limit was hit; or
	// "unavailable" when the store failed under on_store_error deny (see
	// New: the broker answers 503 then, not 429).
	Reason string
}

// Limiter takes one grant of n bytes for key (a principal, or "ip:<addr>"
// for anonymous callers).
type Limiter interface {
	// Take returns an error only when the store fails; the caller then
	// applies rate_limit.on_store_error. The limiters made by New apply
	// on_store_error themselves and return a nil error (see New).
	Take(ctx context.Context, key string, n int64) (Decision, error)
	Close() error
}

// Unlimited allows everything; used when no rate_limit is configured.
type Unlimited struct{}

// Take implements Limiter.
func (Unlimited) Take(context.Context, string, int64) (Decision, error) {
	return Decision{Allowed: true}, nil
}

// Close implements Limiter.
func (Unlimited) Close() error { return nil }
