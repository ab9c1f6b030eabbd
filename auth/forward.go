package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/upbroker/upbroker/config"
)

const (
	defaultForwardTimeout = 2 * time.Second
	maxForwardBody        = 64 << 10
	// maxForwardCache bounds the positive cache; when full, expired
	// entries go first, then arbitrary ones (they are only a shortcut).
	maxForwardCache = 10000
	maxCacheTTL     = 5 * time.Minute
)

// forwardedHeaders are the only request headers sent to the endpoint: the
// session cookie or token the application issued, and nothing the client
// could use to steer the application (Host, X-Forwarded-*, ...).
var forwardedHeaders = []string{"Cookie", "Authorization"}

// Forward asks the application who the caller is: it sends the request's
// Cookie and Authorization headers to auth.forward.url, and a 2xx answer of
// {"principal": "...", "profiles": [...]} lets the caller in.
type Forward struct {
	url    string
	host   string
	client *http.Client
	ttl    time.Duration
	logger *slog.Logger

	mu    sync.Mutex
	cache map[[sha256.Size]byte]forwardEntry
}

type forwardEntry struct {
	p       Principal
	expires time.Time
}

type forwardAnswer struct {
	Principal string   `json:"principal"`
	Profiles  []string `json:"profiles"`
}

func newForward(cfg config.Forward, logger *slog.Logger) (*Forward, error) {
	u, err := url.Parse(cfg.URL)
	if cfg.URL == "" {
		return nil, errors.New("auth.forward.url: required in mode forward")
	}
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("auth.forward.url: must be an absolute http(s) URL")
	}
	if u.User != nil {
		return nil, errors.New("auth.forward.url: must not carry credentials (user:password@)")
	}
	if cfg.Timeout < 0 || cfg.Timeout > time.Minute {
		return nil, fmt.Errorf("auth.forward.timeout: must be between 0 (default %s) and 1m", defaultForwardTimeout)
	}
	if cfg.CacheTTL < 0 || cfg.CacheTTL > maxCacheTTL {
		return nil, fmt.Errorf("auth.forward.cache_ttl: must be between 0 (no cache) and %s", maxCacheTTL)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultForwardTimeout
	}
	return &Forward{
		url:  cfg.URL,
		host: u.Host,
		client: &http.Client{
			Timeout: timeout,
			// A redirect is the application's "log in first" answer; never
			// follow it, and never carry the cookie to another host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ttl:    cfg.CacheTTL,
		logger: logger,
		cache:  map[[sha256.Size]byte]forwardEntry{},
	}, nil
}

// Authenticate implements Authenticator.
func (f *Forward) Authenticate(r *http.Request) (Principal, error) {
	var vals []string
	found := false
	for _, h := range forwardedHeaders {
		v := r.Header.Values(h)
		if len(v) > 0 {
			found = true
		}
		vals = append(vals, h+"\x00"+strings.Join(v, "\x00"))
	}
	if !found {
		return Principal{}, fmt.Errorf("%w: missing session cookie or authorization header", ErrUnauthorized)
	}
	cacheKey := sha256.Sum256([]byte(strings.Join(vals, "\x01")))
	if p, ok := f.cached(cacheKey); ok {
		return p, nil
	}
	p, err := f.ask(r.Context(), r.Header)
	if err != nil {
		return Principal{}, err
	}
	f.store(cacheKey, p)
	return p, nil
}

func (f *Forward) ask(ctx context.Context, in http.Header) (Principal, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: build request: %w", ErrUnavailable, err)
	}
	for _, h := range forwardedHeaders {
		for _, v := range in.Values(h) {
			req.Header.Add(h, v)
		}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		// The error text holds only the URL, never the headers.
		f.logger.Warn("auth forward endpoint unreachable", "host", f.host, "error", err)
		return Principal{}, fmt.Errorf("%w: authentication service unreachable", ErrUnavailable)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		f.logger.Warn("auth forward endpoint failed", "host", f.host, "status", resp.StatusCode)
		return Principal{}, fmt.Errorf("%w: authentication service failed", ErrUnavailable)
	default:
		// 401, 403, a redirect to a login page, or any other refusal.
		return Principal{}, fmt.Errorf("%w: not signed in", ErrUnauthorized)
	}
	var a forwardAnswer
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxForwardBody))
	if err := dec.Decode(&a); err != nil {
		f.logger.Warn("auth forward endpoint sent an unreadable answer", "host", f.host, "error", err)
		return Principal{}, fmt.Errorf("%w: authentication service sent an unreadable answer", ErrUnavailable)
	}
	if strings.TrimSpace(a.Principal) == "" {
		f.logger.Warn("auth forward endpoint answered 2xx without a principal", "host", f.host)
		return Principal{}, fmt.Errorf("%w: authentication service named no principal", ErrUnavailable)
	}
	return Principal{ID: a.Principal, Profiles: a.Profiles}, nil
}

func (f *Forward) cached(k [sha256.Size]byte) (Principal, bool) {
	if f.ttl <= 0 {
		return Principal{}, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.cache[k]
	if !ok {
		return Principal{}, false
	}
	if time.Now().After(e.expires) {
		delete(f.cache, k)
		return Principal{}, false
	}
	return copyPrincipal(e.p), true
}

func (f *Forward) store(k [sha256.Size]byte, p Principal) {
	if f.ttl <= 0 {
		return
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.cache) >= maxForwardCache {
		for key, e := range f.cache {
			if now.After(e.expires) {
				delete(f.cache, key)
			}
		}
		for key := range f.cache {
			if len(f.cache) < maxForwardCache {
				break
			}
			delete(f.cache, key)
		}
	}
	f.cache[k] = forwardEntry{p: copyPrincipal(p), expires: now.Add(f.ttl)}
}

func copyPrincipal(p Principal) Principal {
	if p.Profiles != nil {
		p.Profiles = append([]string{}, p.Profiles...)
	}
	return p
}
