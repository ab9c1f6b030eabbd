package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/upbroker/upbroker/config"
)

// Reasons a Decision may give when it refuses.
const (
	ReasonGrants = "grants"
	ReasonBytes  = "bytes"
	// ReasonUnavailable: the store failed and on_store_error is deny. The
	// broker answers 503, not 429: the caller did nothing wrong.
	ReasonUnavailable = "unavailable"
)

const day = 24 * time.Hour

// storeTimeout bounds one call to the store, so a hung Redis delays a
// request by at most this much before on_store_error applies.
const storeTimeout = 2 * time.Second

// maxKeyLen bounds store keys; longer keys (a long JWT sub) are hashed.
const maxKeyLen = 128

// limits are the resolved settings shared by every store.
type limits struct {
	// interval is the time one grant "costs" (GCRA emission interval);
	// zero means no grant limit.
	interval time.Duration
	burst    int64
	// quota is bytes per UTC day; zero means none.
	quota int64
}

// store is one backing store of the limiter. Its take returns an error
// only when the store itself fails.
type store interface {
	take(ctx context.Context, key string, n int64) (Decision, error)
	close() error
}

// New builds the limiter of rate_limit.
//
// Contract: the Limiter returned never passes a store failure to the
// caller. When the store (Redis) fails, the failure is logged and
// rate_limit.on_store_error decides: with "deny" (the default) Take returns
// Decision{Allowed: false, Reason: ReasonUnavailable} and a nil error, and
// the broker answers 503; with "allow" it returns an allowing Decision. Take
// returns an error only for a caller bug (a negative byte count).
//
// With neither grants_per_minute nor bytes_per_day set, New returns
// Unlimited. A refused request consumes nothing: neither a grant nor bytes.
func New(ctx context.Context, cfg config.RateLimit, logger *slog.Logger) (Limiter, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "ratelimit")
	lim, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	allow := false
	switch cfg.OnStoreError {
	case "", "deny":
	case "allow":
		allow = true
	default:
		return nil, fmt.Errorf("rate_limit.on_store_error: %q is not deny or allow", cfg.OnStoreError)
	}
	var s store
	switch cfg.Store {
	case "", "memory":
		if cfg.RedisURL != "" {
			return nil, errors.New("rate_limit.redis_url: set, but rate_limit.store is not redis")
		}
		if lim.interval == 0 && lim.quota == 0 {
			return Unlimited{}, nil
		}
		s = newMemory(lim)
	case "redis":
		if lim.interval == 0 && lim.quota == 0 {
			return Unlimited{}, nil
		}
		s, err = newRedis(ctx, cfg.RedisURL, lim, logger)
		if err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("rate_limit.store: %q is not memory or redis", cfg.Store)
	}
	return &guarded{s: s, allow: allow, logger: logger}, nil
}

func resolve(cfg config.RateLimit) (limits, error) {
	var l limits
	switch {
	case cfg.GrantsPerMinute < 0:
		return l, fmt.Errorf("rate_limit.grants_per_minute: must not be negative, got %d", cfg.GrantsPerMinute)
	case cfg.GrantsPerMinute > 60000:
		return l, fmt.Errorf("rate_limit.grants_per_minute: at most 60000, got %d", cfg.GrantsPerMinute)
	case cfg.Burst < 0:
		return l, fmt.Errorf("rate_limit.burst: must not be negative, got %d", cfg.Burst)
	case cfg.Burst > 0 && cfg.GrantsPerMinute == 0:
		return l, errors.New("rate_limit.burst: set without rate_limit.grants_per_minute")
	case cfg.BytesPerDay < 0:
		return l, fmt.Errorf("rate_limit.bytes_per_day: must not be negative, got %d", cfg.BytesPerDay)
	}
	if cfg.GrantsPerMinute > 0 {
		l.interval = time.Minute / time.Duration(cfg.GrantsPerMinute)
		l.burst = int64(cfg.Burst)
		if l.burst == 0 {
			// A minute's worth at once, like most token buckets.
			l.burst = int64(cfg.GrantsPerMinute)
		}
	}
	l.quota = int64(cfg.BytesPerDay)
	return l, nil
}

// storeKey keeps keys short: a principal may be a long JWT sub.
func storeKey(key string) string {
	if len(key) <= maxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// guarded applies on_store_error around a store.
type guarded struct {
	s      store
	allow  bool
	logger *slog.Logger
	// lastLog throttles failure logs to one per interval: a down Redis
	// under load must not flood the log with one line per request.
	lastLog    atomic.Int64
	suppressed atomic.Int64
}

const failureLogInterval = 5 * time.Second

// Take implements Limiter.
func (g *guarded) Take(ctx context.Context, key string, n int64) (Decision, error) {
	if n < 0 {
		return Decision{}, fmt.Errorf("ratelimit: negative byte count %d", n)
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	d, err := g.s.take(ctx, storeKey(key), n)
	if err == nil {
		return d, nil
	}
	g.logFailure(err)
	if g.allow {
		return Decision{Allowed: true}, nil
	}
	return Decision{Allowed: false, Reason: ReasonUnavailable}, nil
}

func (g *guarded) logFailure(err error) {
	now := time.Now().UnixNano()
	last := g.lastLog.Load()
	if now-last < int64(failureLogInterval) || !g.lastLog.CompareAndSwap(last, now) {
		g.suppressed.Add(1)
		return
	}
	action := "deny"
	if g.allow {
		action = "allow"
	}
	g.logger.Error("rate limit store failed", "error", err, "on_store_error", action,
		"suppressed_since_last_log", g.suppressed.Swap(0))
}

// Close implements Limiter.
func (g *guarded) Close() error { return g.s.close() }

// RetryAfterSeconds is d.RetryAfter rounded up to whole seconds, at least
// 1, as the Retry-After header wants it.
func (d Decision) RetryAfterSeconds() int {
	s := math.Ceil(d.RetryAfter.Seconds())
	if s < 1 {
		return 1
	}
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(s)
}
