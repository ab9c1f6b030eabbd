package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
)

const (
	defaultJWKSRefresh = 15 * time.Minute
	defaultJWKSTimeout = 5 * time.Second
	// jwksUnknownKIDInterval bounds refreshes caused by a token whose kid
	// is not cached: a flood of made-up kids costs at most one fetch per
	// interval, while a genuine key rotation is picked up at once.
	jwksUnknownKIDInterval = 30 * time.Second
	// jwksRetryAfterFailure keeps a down identity provider from being
	// asked again by every request; meanwhile cached keys keep working.
	jwksRetryAfterFailure = 2 * time.Second
	maxJWKSBytes          = 1 << 20
)

// jwksCache holds the key set of a JWKS URL. It has no goroutine of its
// own: the first request fetches, a stale set is served while one
// background fetch renews it, and an unknown kid forces a (rate-limited)
// fetch. Concurrent fetches collapse into one through singleflight, each
// bounded by the timeout.
type jwksCache struct {
	url, host          string
	client             *http.Client
	refresh, timeout   time.Duration
	unknownKIDInterval time.Duration
	logger             *slog.Logger
	group              singleflight.Group

	mu          sync.Mutex
	kf          keyfunc.Keyfunc
	fetchedAt   time.Time
	failedAt    time.Time
	lastUnknown time.Time
}

func newJWKSCache(rawURL string, refresh, timeout time.Duration, logger *slog.Logger) *jwksCache {
	if refresh <= 0 {
		refresh = defaultJWKSRefresh
	}
	if timeout <= 0 {
		timeout = defaultJWKSTimeout
	}
	host := ""
	if u, err := url.Parse(rawURL); err == nil {
		host = u.Host
	}
	return &jwksCache{
		url:                rawURL,
		host:               host,
		client:             &http.Client{Timeout: timeout},
		refresh:            refresh,
		timeout:            timeout,
		unknownKIDInterval: jwksUnknownKIDInterval,
		logger:             logger,
	}
}

// keyfunc returns the jwt.Keyfunc for one request.
func (c *jwksCache) keyfunc(r *http.Request) jwt.Keyfunc {
	ctx := r.Context()
	return func(t *jwt.Token) (any, error) {
		kf, err := c.current(ctx)
		if err != nil {
			return nil, err
		}
		key, err := kf.KeyfuncCtx(ctx)(t)
		if err == nil || !errors.Is(err, jwkset.ErrKeyNotFound) || !c.mayRefreshUnknown() {
			return key, err
		}
		kf, ferr := c.fetch(ctx)
		if ferr != nil {
			return nil, ferr
		}
		return kf.KeyfuncCtx(ctx)(t)
	}
}

// current returns the cached set, fetching it when there is none and
// starting a background renewal when it is stale.
func (c *jwksCache) current(ctx context.Context) (keyfunc.Keyfunc, error) {
	c.mu.Lock()
	kf, fetchedAt, failedAt := c.kf, c.fetchedAt, c.failedAt
	c.mu.Unlock()
	now := time.Now()
	recentFailure := !failedAt.IsZero() && now.Sub(failedAt) < jwksRetryAfterFailure
	if kf == nil {
		if recentFailure {
			return nil, fmt.Errorf("%w: JWKS not available", ErrUnavailable)
		}
		return c.fetch(ctx)
	}
	if now.Sub(fetchedAt) >= c.refresh && !recentFailure {
		// Not waited for: the stale set stays valid until renewed.
		c.group.DoChan("jwks", c.doFetch)
	}
	return kf, nil
}

func (c *jwksCache) mayRefreshUnknown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if !c.lastUnknown.IsZero() && now.Sub(c.lastUnknown) < c.unknownKIDInterval {
		return false
	}
	c.lastUnknown = now
	return true
}

// fetch waits for the (shared) fetch, or for the request to end.
func (c *jwksCache) fetch(ctx context.Context) (keyfunc.Keyfunc, error) {
	ch := c.group.DoChan("jwks", c.doFetch)
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(keyfunc.Keyfunc), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: JWKS fetch abandoned: %w", ErrUnavailable, ctx.Err())
	}
}

// doFetch runs once per flight, on its own deadline: it is shared by
// several requests, so no single request's context may cancel it.
func (c *jwksCache) doFetch() (any, error) {
	kf, err := c.download()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failedAt = time.Now()
		c.logger.Warn("JWKS fetch failed", "host", c.host, "error", err)
		return nil, fmt.Errorf("%w: JWKS fetch failed", ErrUnavailable)
	}
	c.kf, c.fetchedAt, c.failedAt = kf, time.Now(), time.Time{}
	return kf, nil
}

func (c *jwksCache) download() (keyfunc.Keyfunc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("key set larger than %d bytes", maxJWKSBytes)
	}
	kf, err := keyfunc.NewJWKSetJSON(body)
	if err != nil {
		return nil, fmt.Errorf("parse key set: %w", err)
	}
	keys, err := kf.Storage().KeyReadAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("read key set: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("key set is empty")
	}
	return kf, nil
}

func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
