package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisKeyPrefix namespaces upbroker's keys in a shared Redis.
const redisKeyPrefix = "upbroker:rl:"

// takeScript does both checks and the update in one atomic step, on
// Redis's own clock, so replicas with skewed clocks still share one limit.
// State is one hash per key: tat (GCRA theoretical arrival time, µs),
// day (UTC day number) and used (bytes granted that day). Times are
// integer microseconds: below 2^53, so exact in Lua's doubles, and written
// back with %d because Lua's default number format would round them.
//
// ARGV: interval µs (0 = no grant limit), burst, quota bytes (0 = none), n.
// Returns {allowed (0|1), reason, retry-after µs}.
var takeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local quota = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
local dayus = 86400000000
local today = math.floor(now / dayus)
local dayend = (today + 1) * dayus

local h = redis.call('HMGET', KEYS[1], 'tat', 'day', 'used')
local tat = tonumber(h[1]) or now
if tat < now then tat = now end
local used = 0
if tonumber(h[2]) == today then used = tonumber(h[3]) or 0 end

if quota > 0 and used + n > quota then
  return {0, 'bytes', dayend - now}
end
if interval > 0 then
  local newtat = tat + interval
  local allowat = newtat - interval * burst
  if now < allowat then
    return {0, 'grants', allowat - now}
  end
  tat = newtat
end

redis.call('HSET', KEYS[1], 'tat', string.format('%d', tat),
  'day', string.format('%d', today), 'used', string.format('%d', used + n))
-- Keep the key only while it remembers something: until the grant state
-- has refilled, or the day's bytes roll over.
local ttl = tat - now
if quota > 0 and dayend - now > ttl then ttl = dayend - now end
redis.call('PEXPIRE', KEYS[1], math.floor(ttl / 1000) + 1000)
return {1, '', 0}
`)

type redisStore struct {
	c   *redis.Client
	lim limits
}

func newRedis(ctx context.Context, rawURL string, l limits, logger *slog.Logger) (*redisStore, error) {
	if rawURL == "" {
		return nil, errors.New("rate_limit.redis_url: required when rate_limit.store is redis")
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		// The URL may hold a password: name the field, not the value.
		return nil, errors.New("rate_limit.redis_url: not a valid redis:// or rediss:// URL")
	}
	// Fail fast so that on_store_error applies within storeTimeout rather
	// than after go-redis's retries.
	opts.MaxRetries = 1
	opts.DialerRetries = 1
	if opts.DialTimeout == 0 || opts.DialTimeout > time.Second {
		opts.DialTimeout = time.Second
	}
	// go-redis logs pool failures with the standard logger; route them
	// through slog so logs stay one format (it is process-wide, and the
	// last limiter opened wins, which is fine: they share one logger).
	redis.SetLogger(redisLogger{logger.With("component", "redis")})
	s := &redisStore{c: redis.NewClient(opts), lim: l}
	pctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := s.c.Ping(pctx).Err(); err != nil {
		// Not fatal: Redis may come up after the broker; meanwhile
		// on_store_error decides.
		logger.Warn("rate limit store not reachable at startup", "error", err)
	}
	return s, nil
}

func (s *redisStore) take(ctx context.Context, key string, n int64) (Decision, error) {
	res, err := takeScript.Run(ctx, s.c, []string{redisKeyPrefix + key},
		s.lim.interval.Microseconds(), s.lim.burst, s.lim.quota, n).Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("redis rate limit script: %w", err)
	}
	if len(res) != 3 {
		return Decision{}, fmt.Errorf("redis rate limit script: %d results, want 3", len(res))
	}
	allowed, _ := res[0].(int64)
	reason, _ := res[1].(string)
	retry, _ := res[2].(int64)
	if allowed == 1 {
		return Decision{Allowed: true}, nil
	}
	if reason != ReasonGrants && reason != ReasonBytes {
		return Decision{}, fmt.Errorf("redis rate limit script: unexpected reason %q", reason)
	}
	return Decision{Reason: reason, RetryAfter: time.Duration(retry) * time.Microsecond}, nil
}

func (s *redisStore) close() error { return s.c.Close() }

// redisLogger adapts slog to go-redis's internal logger. Its messages name
// addresses, never the URL's password.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, fmt.Sprintf(format, v...))
}
