package security

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upbroker/upbroker/internal/testenv"
)

// redisBrokerYAML is one replica's config: the file driver (each replica
// its own folder; the limit is what they share) and a Redis limit.
func redisBrokerYAML(t *testing.T, digest, redisURL string, perMinute int, onStoreError string) func(string) string {
	dir := t.TempDir()
	ticketKey := randomHex(t, 32)
	return func(publicURL string) string {
		return fmt.Sprintf(`server:
  addr: 127.0.0.1:8080
  public_url: %s
  demo_page: false
secrets:
  ticket_keys: [%q]
auth:
  mode: api_key
  api_keys: [{name: shared, sha256: %s}]
rate_limit:
  store: redis
  redis_url: %s
  grants_per_minute: %d
  burst: %d
  on_store_error: %s
backends:
  local: {driver: file, path: %q}
profiles:
  images:
    backend: local
    content_types: [image/png]
    max_size: 1MiB
default_profile: images
`, publicURL, ticketKey, digest, redisURL, perMinute, perMinute, onStoreError, dir)
	}
}

// TestRedisSharedLimit runs two broker replicas, each with its own
// broker.New and server, against one real Redis: 2×N grants sent at once,
// split over both, give exactly N grants. The limit refills one grant
// every 60/N seconds; the 2×N requests go out together, far inside that.
func TestRedisSharedLimit(t *testing.T) {
	const n = 10
	addr := testenv.StartRedis(t)
	key := newAPIKey(t)
	redisURL := "redis://" + addr + "/0"
	replicas := []*instance{
		startBroker(t, redisBrokerYAML(t, key.Digest, redisURL, n, "deny")),
		startBroker(t, redisBrokerYAML(t, key.Digest, redisURL, n, "deny")),
	}
	body := `{"filename":"a.png","content_type":"image/png","size":100}`

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
		per    = map[string]int{}
		start  = make(chan struct{})
	)
	for i := 0; i < 2*n; i++ {
		in := replicas[i%2]
		req := grantRequest(t, in.URL, key.Key, body)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("grant: %v", err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
					t.Errorf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
				}
			}
			mu.Lock()
			counts[resp.StatusCode]++
			if resp.StatusCode == http.StatusCreated {
				per[in.URL]++
			}
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	if counts[http.StatusCreated] != n || counts[http.StatusTooManyRequests] != n {
		t.Fatalf("2×%d parallel grants over two replicas: %v by status; want %d × 201 and %d × 429", n, counts, n, n)
	}
	t.Logf("grants by replica: %v", per)
	for _, in := range replicas {
		if failed := in.Errors.list(); len(failed) > 0 {
			t.Errorf("5xx answers: %q", failed)
		}
	}
}

// TestRedisDown stops Redis under two brokers: with on_store_error deny
// a grant is 503 backend_unavailable (the caller did nothing wrong, so
// not 429), with allow it is granted.
func TestRedisDown(t *testing.T) {
	bin, err := testenv.Binary("redis-server")
	if err != nil {
		testenv.Unavailable(t, "redis-server not found (apt-get install redis-server)")
		return
	}
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// Started here rather than with testenv.StartRedis, which keeps the
	// process to itself: this test must stop it half-way.
	redis := testenv.Start(t, "redis-server", nil, bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	redis.WaitTCP(t, addr, 15*time.Second)

	key := newAPIKey(t)
	redisURL := "redis://" + addr + "/0"
	brokers := map[string]*instance{
		"deny":  startBroker(t, redisBrokerYAML(t, key.Digest, redisURL, 600, "deny")),
		"allow": startBroker(t, redisBrokerYAML(t, key.Digest, redisURL, 600, "allow")),
	}
	body := `{"filename":"a.png","content_type":"image/png","size":100}`
	grantOn := func(mode string) *response {
		return do(t, grantRequest(t, brokers[mode].URL, key.Key, body))
	}
	for _, mode := range []string{"deny", "allow"} {
		if r := grantOn(mode); r.Status != http.StatusCreated {
			t.Fatalf("%s, Redis up: status %d, want 201: %s", mode, r.Status, r.Body)
		}
	}

	redis.Stop()

	tests := []struct {
		mode   string
		status int
		code   string
	}{
		{"deny", http.StatusServiceUnavailable, "backend_unavailable"},
		{"allow", http.StatusCreated, ""},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			r := grantOn(tc.mode)
			if r.Status != tc.status {
				t.Fatalf("Redis down, on_store_error %s: status %d, want %d: %s", tc.mode, r.Status, tc.status, r.Body)
			}
			if tc.code != "" {
				if e, ok := r.err(); !ok || e.Code != tc.code {
					t.Errorf("error %+v, want code %s", e, tc.code)
				}
				if r.Header.Get("Retry-After") != "" {
					t.Errorf("503 for a store failure carries Retry-After %q: it is no rate limit", r.Header.Get("Retry-After"))
				}
			}
			logs := brokers[tc.mode].Logs.String()
			if !containsAll(logs, "rate limit store failed", "on_store_error="+tc.mode) {
				t.Errorf("the store failure was not logged with its on_store_error action:\n%s", logs)
			}
		})
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
