package ratelimit

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/internal/testenv"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// stores gives each test the same table over both stores; the Redis one is
// a real redis-server shared by the subtests (each uses its own keys).
func stores(t *testing.T) map[string]func(t *testing.T, cfg config.RateLimit) Limiter {
	t.Helper()
	// Started on the parent test so that it outlives the subtests.
	addr := ""
	if _, err := testenv.Binary("redis-server"); err == nil {
		addr = testenv.StartRedis(t)
	}
	return map[string]func(t *testing.T, cfg config.RateLimit) Limiter{
		"memory": func(t *testing.T, cfg config.RateLimit) Limiter {
			cfg.Store = "memory"
			return newLimiter(t, cfg)
		},
		"redis": func(t *testing.T, cfg config.RateLimit) Limiter {
			if addr == "" {
				testenv.Unavailable(t, "redis-server not installed")
			}
			cfg.Store = "redis"
			cfg.RedisURL = "redis://" + addr + "/0"
			return newLimiter(t, cfg)
		},
	}
}

func newLimiter(t *testing.T, cfg config.RateLimit) Limiter {
	t.Helper()
	l, err := New(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

type step struct {
	n      int64
	allow  bool
	reason string
	// maxRetry bounds RetryAfter on a refusal (it must also be > 0).
	maxRetry time.Duration
	// sleepRetry waits the refusal's RetryAfter before the next step.
	sleepRetry bool
}

func TestTake(t *testing.T) {
	cases := []struct {
		name  string
		cfg   config.RateLimit
		steps []step
	}{
		{
			name: "burst then refusal",
			cfg:  config.RateLimit{GrantsPerMinute: 60, Burst: 3},
			steps: []step{
				{allow: true}, {allow: true}, {allow: true},
				{reason: ReasonGrants, maxRetry: time.Second},
				{reason: ReasonGrants, maxRetry: time.Second},
			},
		},
		{
			name: "burst defaults to a minute's worth",
			cfg:  config.RateLimit{GrantsPerMinute: 4},
			steps: []step{
				{allow: true}, {allow: true}, {allow: true}, {allow: true},
				{reason: ReasonGrants, maxRetry: 15 * time.Second},
			},
		},
		{
			name: "refill after Retry-After",
			cfg:  config.RateLimit{GrantsPerMinute: 6000, Burst: 1},
			steps: []step{
				{allow: true},
				// Waiting exactly what the refusal said is always enough,
				// however slow the machine.
				{reason: ReasonGrants, maxRetry: 10 * time.Millisecond, sleepRetry: true},
				{allow: true},
			},
		},
		{
			name: "bytes quota, refused request consumes nothing",
			cfg:  config.RateLimit{BytesPerDay: 1000},
			steps: []step{
				{n: 600, allow: true},
				{n: 500, reason: ReasonBytes, maxRetry: 24 * time.Hour},
				{n: 400, allow: true},
				{n: 1, reason: ReasonBytes, maxRetry: 24 * time.Hour},
				{n: 0, allow: true},
			},
		},
		{
			name: "one request larger than the quota",
			cfg:  config.RateLimit{BytesPerDay: 10},
			steps: []step{
				{n: 11, reason: ReasonBytes, maxRetry: 24 * time.Hour},
				{n: 10, allow: true},
			},
		},
		{
			// The refused 400 must leave used at 600: were it counted,
			// the last step would hit the byte quota instead.
			name: "grant refusal consumes no bytes",
			cfg:  config.RateLimit{GrantsPerMinute: 1, Burst: 1, BytesPerDay: 1000},
			steps: []step{
				{n: 600, allow: true},
				{n: 400, reason: ReasonGrants, maxRetry: time.Minute},
				{n: 401, reason: ReasonBytes, maxRetry: 24 * time.Hour},
				{n: 400, reason: ReasonGrants, maxRetry: time.Minute},
			},
		},
		{
			name:  "no grant limit when grants_per_minute is zero",
			cfg:   config.RateLimit{BytesPerDay: 1 << 40},
			steps: repeat(step{n: 1, allow: true}, 100),
		},
	}
	for storeName, mk := range stores(t) {
		t.Run(storeName, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					l := mk(t, tc.cfg)
					key := "p:" + t.Name()
					for i, s := range tc.steps {
						d, err := l.Take(context.Background(), key, s.n)
						if err != nil {
							t.Fatalf("step %d: Take: %v", i, err)
						}
						if d.Allowed != s.allow {
							t.Fatalf("step %d: allowed = %v, want %v (%+v)", i, d.Allowed, s.allow, d)
						}
						if s.allow {
							continue
						}
						if d.Reason != s.reason {
							t.Fatalf("step %d: reason = %q, want %q", i, d.Reason, s.reason)
						}
						if d.RetryAfter <= 0 || d.RetryAfter > s.maxRetry {
							t.Fatalf("step %d: RetryAfter = %v, want in (0, %v]", i, d.RetryAfter, s.maxRetry)
						}
						if d.RetryAfterSeconds() < 1 {
							t.Fatalf("step %d: RetryAfterSeconds = %d", i, d.RetryAfterSeconds())
						}
						if s.sleepRetry {
							time.Sleep(d.RetryAfter + time.Millisecond)
						}
					}
				})
			}
			t.Run("keys are independent", func(t *testing.T) {
				l := mk(t, config.RateLimit{GrantsPerMinute: 1, Burst: 1})
				a, b := "a:"+t.Name(), "b:"+t.Name()
				want := []struct {
					key   string
					allow bool
				}{{a, true}, {a, false}, {b, true}, {b, false}}
				for i, w := range want {
					d, err := l.Take(context.Background(), w.key, 0)
					if err != nil || d.Allowed != w.allow {
						t.Fatalf("take %d on %s: %+v, %v; want allowed=%v", i, w.key, d, err, w.allow)
					}
				}
			})
		})
	}
}

func repeat(s step, n int) []step {
	out := make([]step, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestConcurrentTakes fires 2×N parallel takes against a limit of N. With
// Redis the takes are split over two limiters (two broker replicas)
// sharing one server; exactly N may pass. One grant per minute keeps
// refills out of the count.
func TestConcurrentTakes(t *testing.T) {
	const n = 25
	for storeName, mk := range stores(t) {
		t.Run(storeName, func(t *testing.T) {
			cfg := config.RateLimit{GrantsPerMinute: 1, Burst: n}
			limiters := []Limiter{mk(t, cfg)}
			if storeName == "redis" {
				limiters = append(limiters, mk(t, cfg))
			}
			key := "p:" + t.Name()
			var allowed, refused atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := 0; i < 2*n; i++ {
				wg.Add(1)
				go func(l Limiter) {
					defer wg.Done()
					<-start
					d, err := l.Take(context.Background(), key, 1)
					switch {
					case err != nil:
						t.Errorf("Take: %v", err)
					case d.Allowed:
						allowed.Add(1)
					case d.Reason == ReasonGrants:
						refused.Add(1)
					default:
						t.Errorf("unexpected decision %+v", d)
					}
				}(limiters[i%len(limiters)])
			}
			close(start)
			wg.Wait()
			if allowed.Load() != n || refused.Load() != n {
				t.Fatalf("allowed %d, refused %d; want %d and %d", allowed.Load(), refused.Load(), n, n)
			}
		})
	}
}

// TestStoreDown points the Redis store at a port where nothing listens.
func TestStoreDown(t *testing.T) {
	addr := "127.0.0.1:" + itoa(testenv.FreePort(t))
	cases := []struct {
		onErr string
		want  Decision
	}{
		{"", Decision{Allowed: false, Reason: ReasonUnavailable}},
		{"deny", Decision{Allowed: false, Reason: ReasonUnavailable}},
		{"allow", Decision{Allowed: true}},
	}
	for _, tc := range cases {
		t.Run("on_store_error="+tc.onErr, func(t *testing.T) {
			var logs lockedBuf
			l, err := New(context.Background(), config.RateLimit{
				Store: "redis", RedisURL: "redis://:hunter2secret@" + addr + "/0",
				GrantsPerMinute: 60, OnStoreError: tc.onErr,
			}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer l.Close()
			for i := 0; i < 3; i++ {
				d, err := l.Take(context.Background(), "p", 1)
				if err != nil {
					t.Fatalf("Take returned an error; the store error must be absorbed: %v", err)
				}
				if d != tc.want {
					t.Fatalf("Take = %+v, want %+v", d, tc.want)
				}
			}
			out := logs.String()
			if !contains(out, "rate limit store failed") {
				t.Fatalf("store failure not logged:\n%s", out)
			}
			if contains(out, "hunter2secret") {
				t.Fatalf("log holds the Redis password:\n%s", out)
			}
		})
	}
}

func TestNewConfig(t *testing.T) {
	cases := []struct {
		name      string
		cfg       config.RateLimit
		wantErr   string
		unlimited bool
	}{
		{name: "empty is unlimited", cfg: config.RateLimit{}, unlimited: true},
		{name: "redis without limits needs no redis", cfg: config.RateLimit{Store: "redis"}, unlimited: true},
		{name: "memory", cfg: config.RateLimit{GrantsPerMinute: 60}},
		{name: "unknown store", cfg: config.RateLimit{Store: "etcd", GrantsPerMinute: 1}, wantErr: "rate_limit.store"},
		{name: "negative grants", cfg: config.RateLimit{GrantsPerMinute: -1}, wantErr: "rate_limit.grants_per_minute"},
		{name: "too many grants", cfg: config.RateLimit{GrantsPerMinute: 60001}, wantErr: "rate_limit.grants_per_minute"},
		{name: "negative burst", cfg: config.RateLimit{GrantsPerMinute: 1, Burst: -1}, wantErr: "rate_limit.burst"},
		{name: "burst alone", cfg: config.RateLimit{Burst: 5}, wantErr: "rate_limit.burst"},
		{name: "negative bytes", cfg: config.RateLimit{BytesPerDay: -1}, wantErr: "rate_limit.bytes_per_day"},
		{name: "bad on_store_error", cfg: config.RateLimit{GrantsPerMinute: 1, OnStoreError: "maybe"}, wantErr: "rate_limit.on_store_error"},
		{name: "redis without url", cfg: config.RateLimit{Store: "redis", GrantsPerMinute: 1}, wantErr: "rate_limit.redis_url"},
		{name: "redis bad url hides it", cfg: config.RateLimit{Store: "redis", RedisURL: "http://u:topsecret@x", GrantsPerMinute: 1}, wantErr: "rate_limit.redis_url"},
		{name: "redis_url without redis store", cfg: config.RateLimit{RedisURL: "redis://127.0.0.1:1/0", GrantsPerMinute: 1}, wantErr: "rate_limit.redis_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := New(context.Background(), tc.cfg, quiet())
			if tc.wantErr != "" {
				if err == nil || !contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				if contains(err.Error(), "topsecret") {
					t.Fatalf("error holds the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer l.Close()
			if _, ok := l.(Unlimited); ok != tc.unlimited {
				t.Fatalf("limiter %T, unlimited want %v", l, tc.unlimited)
			}
		})
	}
}

func TestNegativeBytes(t *testing.T) {
	l := newLimiter(t, config.RateLimit{GrantsPerMinute: 60})
	if _, err := l.Take(context.Background(), "p", -1); err == nil {
		t.Fatal("Take with n = -1 succeeded")
	}
}

// TestMemoryEvictsIdleKeys drives the store's clock: a key is dropped on
// the next sweep (at most a minute apart) once its grants have refilled
// and it counts no bytes for today.
func TestMemoryEvictsIdleKeys(t *testing.T) {
	type take struct {
		advance time.Duration
		key     string
		want    int // keys held after the take
	}
	cases := []struct {
		name  string
		cfg   config.RateLimit
		takes []take
	}{
		{
			name: "bytes keep a key for the day",
			cfg:  config.RateLimit{BytesPerDay: 100},
			takes: []take{
				{0, "a", 1}, {0, "b", 2}, {0, "c", 3},
				{time.Second, "d", 4},     // no sweep yet
				{2 * time.Minute, "e", 5}, // swept, but all counted bytes today
				{24 * time.Hour, "f", 1},  // a new day: all idle but f
				{2 * time.Minute, "g", 2},
			},
		},
		{
			name: "grants keep a key until refilled",
			cfg:  config.RateLimit{GrantsPerMinute: 1, Burst: 3},
			takes: []take{
				{0, "a", 1}, {0, "a", 1}, {0, "b", 2},
				{90 * time.Second, "c", 2}, // b refilled (60s), a not (120s)
				{2 * time.Minute, "d", 1},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lim, err := resolve(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			m := newMemory(lim)
			now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
			m.now = func() time.Time { return now }
			for i, tk := range tc.takes {
				now = now.Add(tk.advance)
				if d, _ := m.take(context.Background(), tk.key, 1); !d.Allowed {
					t.Fatalf("take %d (%s) refused: %+v", i, tk.key, d)
				}
				if got := m.size(); got != tk.want {
					t.Fatalf("take %d (%s): %d keys, want %d", i, tk.key, got, tk.want)
				}
			}
		})
	}
}

func TestStoreKey(t *testing.T) {
	long := string(make([]byte, 500))
	cases := []struct {
		in      string
		same    bool
		wantLen int
	}{
		{"alice", true, 5},
		{long, false, len("sha256:") + 64},
	}
	for _, tc := range cases {
		got := storeKey(tc.in)
		if (got == tc.in) != tc.same || len(got) != tc.wantLen {
			t.Fatalf("storeKey(len %d) = len %d", len(tc.in), len(got))
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want int
	}{
		{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {90 * time.Minute, 5400},
	}
	for _, tc := range cases {
		if got := (Decision{RetryAfter: tc.d}).RetryAfterSeconds(); got != tc.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}
