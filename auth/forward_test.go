package auth

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upbroker/upbroker/config"
)

// app is a stand-in for the application behind auth.forward.url: the
// session cookie "sid" decides who the caller is, and it records the
// headers it was sent.
type app struct {
	srv     *httptest.Server
	calls   atomic.Int64
	mu      sync.Mutex
	last    http.Header
	release chan struct{}
}

func newApp(t *testing.T) *app {
	a := &app{release: make(chan struct{})}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.calls.Add(1)
		a.mu.Lock()
		a.last = r.Header.Clone()
		a.mu.Unlock()
		sid := ""
		if c, err := r.Cookie("sid"); err == nil {
			sid = c.Value
		}
		switch {
		case sid == "alice" || r.Header.Get("Authorization") == "Bearer alice-token":
			json.NewEncoder(w).Encode(map[string]any{"principal": "alice", "profiles": []string{"images"}})
		case sid == "bob":
			json.NewEncoder(w).Encode(map[string]any{"principal": "bob"})
		case sid == "forbidden":
			w.WriteHeader(http.StatusForbidden)
		case sid == "redirect":
			http.Redirect(w, r, "/login", http.StatusFound)
		case sid == "crash":
			w.WriteHeader(http.StatusInternalServerError)
		case sid == "garbage":
			w.Write([]byte("<html>"))
		case sid == "nobody":
			w.Write([]byte(`{"principal": ""}`))
		case sid == "slow":
			select {
			case <-a.release:
			case <-r.Context().Done():
			}
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(a.srv.Close)
	t.Cleanup(func() { close(a.release) })
	return a
}

func (a *app) lastHeaders() http.Header {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

func TestForward(t *testing.T) {
	ap := newApp(t)
	f, err := New(config.Auth{Mode: ModeForward, Forward: config.Forward{URL: ap.srv.URL + "/whoami", Timeout: 2 * time.Second}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		headers  [][2]string
		wantID   string
		profiles []string
		wantErr  error
		// wantCall is false when the broker must not ask the app at all.
		noCall bool
	}{
		{name: "session cookie", headers: [][2]string{{"Cookie", "sid=alice"}}, wantID: "alice", profiles: []string{"images"}},
		{name: "authorization header", headers: [][2]string{{"Authorization", "Bearer alice-token"}}, wantID: "alice", profiles: []string{"images"}},
		{name: "no profiles means all", headers: [][2]string{{"Cookie", "sid=bob"}}, wantID: "bob"},
		{name: "no credentials", wantErr: ErrUnauthorized, noCall: true},
		{name: "unknown session", headers: [][2]string{{"Cookie", "sid=mallory"}}, wantErr: ErrUnauthorized},
		{name: "403", headers: [][2]string{{"Cookie", "sid=forbidden"}}, wantErr: ErrUnauthorized},
		{name: "redirect to login is not followed", headers: [][2]string{{"Cookie", "sid=redirect"}}, wantErr: ErrUnauthorized},
		{name: "5xx", headers: [][2]string{{"Cookie", "sid=crash"}}, wantErr: ErrUnavailable},
		{name: "2xx without JSON", headers: [][2]string{{"Cookie", "sid=garbage"}}, wantErr: ErrUnavailable},
		{name: "2xx without principal", headers: [][2]string{{"Cookie", "sid=nobody"}}, wantErr: ErrUnavailable},
		{name: "timeout", headers: [][2]string{{"Cookie", "sid=slow"}}, wantErr: ErrUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := ap.calls.Load()
			r := httptest.NewRequest("POST", "/v1/uploads", nil)
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			// Headers that must never reach the app.
			r.Header.Set("X-Forwarded-For", "203.0.113.9")
			r.Header.Set("X-Custom", "steer-me")
			r.Header.Set("Content-Type", "application/json")
			p, err := f.Authenticate(r)
			if called := ap.calls.Load() > before; called == tc.noCall {
				t.Fatalf("app called = %v, want %v", called, !tc.noCall)
			}
			if !tc.noCall {
				got := ap.lastHeaders()
				for _, h := range []string{"X-Forwarded-For", "X-Custom", "Content-Type"} {
					if got.Get(h) != "" {
						t.Fatalf("header %s was forwarded", h)
					}
				}
				for _, h := range tc.headers {
					if got.Get(h[0]) != h[1] {
						t.Fatalf("header %s not forwarded: %q", h[0], got.Get(h[0]))
					}
				}
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				for _, h := range tc.headers {
					if strings.Contains(err.Error(), h[1]) {
						t.Fatalf("error text holds the credential: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if p.ID != tc.wantID || !slices.Equal(p.Profiles, tc.profiles) || (tc.profiles == nil) != (p.Profiles == nil) {
				t.Fatalf("principal = %+v, want %s with %v", p, tc.wantID, tc.profiles)
			}
		})
	}
}

func TestForwardCache(t *testing.T) {
	ap := newApp(t)
	cases := []struct {
		name      string
		ttl       time.Duration
		cookies   []string
		wantCalls int64
	}{
		{name: "no cache", cookies: []string{"sid=alice", "sid=alice", "sid=alice"}, wantCalls: 3},
		{name: "positive answers cached", ttl: 5 * time.Minute, cookies: []string{"sid=alice", "sid=alice", "sid=bob", "sid=alice", "sid=bob"}, wantCalls: 2},
		{name: "refusals never cached", ttl: 5 * time.Minute, cookies: []string{"sid=mallory", "sid=mallory", "sid=mallory"}, wantCalls: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := New(config.Auth{Mode: ModeForward, Forward: config.Forward{URL: ap.srv.URL, CacheTTL: tc.ttl}}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			before := ap.calls.Load()
			for _, c := range tc.cookies {
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("Cookie", c)
				p, err := f.Authenticate(r)
				if c == "sid=mallory" {
					if !errors.Is(err, ErrUnauthorized) {
						t.Fatalf("%s: %v", c, err)
					}
					continue
				}
				if err != nil || "sid="+p.ID != c {
					t.Fatalf("%s: %+v, %v", c, p, err)
				}
			}
			if got := ap.calls.Load() - before; got != tc.wantCalls {
				t.Fatalf("%d calls to the app, want %d", got, tc.wantCalls)
			}
		})
	}
}

func TestForwardConfig(t *testing.T) {
	cases := []struct {
		name    string
		cfg     config.Forward
		wantErr string
	}{
		{"no url", config.Forward{}, "auth.forward.url"},
		{"relative url", config.Forward{URL: "/whoami"}, "auth.forward.url"},
		{"ftp", config.Forward{URL: "ftp://app/whoami"}, "auth.forward.url"},
		{"credentials in url", config.Forward{URL: "http://u:secretpw@app/whoami"}, "auth.forward.url"},
		{"negative timeout", config.Forward{URL: "http://app/whoami", Timeout: -1}, "auth.forward.timeout"},
		{"huge cache ttl", config.Forward{URL: "http://app/whoami", CacheTTL: time.Hour}, "auth.forward.cache_ttl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(config.Auth{Mode: ModeForward, Forward: tc.cfg}, quiet())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Fatalf("error text holds the password: %v", err)
			}
		})
	}
}
