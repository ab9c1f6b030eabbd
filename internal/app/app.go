// Package app assembles a broker from a loaded config: ticket keys,
// backends with their own signing keys, auth, the rate limiter, metrics
// and the webhook dispatcher. `upbroker serve` and the integration test
// harnesses all build through here, so the tests run what ships.
package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	_ "github.com/upbroker/upbroker/drivers/all" // a config may name any driver
	"github.com/upbroker/upbroker/metrics"
	"github.com/upbroker/upbroker/ratelimit"
	"github.com/upbroker/upbroker/webhook"
)

// LoadOptions wires the driver registry into config loading, which may not
// import drivers itself.
func LoadOptions() config.LoadOptions {
	return config.LoadOptions{
		BackendSpec: func(name string) (keys, required, secret []string, ok bool) {
			s, ok := drivers.Lookup(name)
			return s.Keys, s.Required, s.Secret, ok
		},
		Drivers: drivers.Names(),
	}
}

// Options are what may differ between the process and a test.
type Options struct {
	// Logger receives every log line; nil means slog.Default().
	Logger *slog.Logger
	// Webhook tunes the dispatcher (retry delays, HTTP client). Build
	// sets its Logger and OnDelivery itself.
	Webhook webhook.Options
}

// App is one assembled broker and the parts a caller may need to watch or
// stop.
type App struct {
	Config *config.Config
	// TicketKeys are the configured keys, or one ephemeral key (see Build).
	TicketKeys [][]byte
	Backends   map[string]drivers.Driver
	Metrics    *metrics.Metrics
	Dispatcher *webhook.Dispatcher
	Broker     *broker.Broker
}

// Build opens everything cfg names. Without configured ticket keys it
// makes an ephemeral one if server.addr is loopback, and refuses
// otherwise; it also refuses auth mode none off loopback. On error,
// whatever was opened is closed again.
func Build(ctx context.Context, cfg *config.Config, o Options) (*App, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	keys, err := ticketKeys(cfg, logger)
	if err != nil {
		return nil, err
	}
	if err := auth.CheckListen(cfg.Auth, cfg.Server.Addr); err != nil {
		return nil, err
	}
	a := &App{Config: cfg, TicketKeys: keys}
	a.Backends, err = openBackends(ctx, cfg, keys[0], logger)
	if err != nil {
		return nil, err
	}
	closeBackends := func() {
		for name, d := range a.Backends {
			if err := d.Close(); err != nil {
				logger.Warn("close backend", "backend", name, "err", err)
			}
		}
	}
	authn, err := auth.New(cfg.Auth, logger)
	if err != nil {
		closeBackends()
		return nil, err
	}
	limiter, err := ratelimit.New(ctx, cfg.RateLimit, logger)
	if err != nil {
		closeBackends()
		return nil, err
	}
	a.Metrics = metrics.New()
	wo := o.Webhook
	wo.Logger, wo.OnDelivery = logger, a.Metrics.WebhookDelivery
	a.Dispatcher, err = webhook.NewDispatcher(cfg.Webhooks, wo)
	if err != nil {
		closeBackends()
		_ = limiter.Close()
		return nil, err
	}
	a.Broker, err = broker.New(broker.Options{
		Config: cfg, Backends: a.Backends, TicketKeys: keys, Auth: authn,
		Limiter: limiter, Events: a.Dispatcher, Metrics: a.Metrics, Logger: logger,
	})
	if err != nil {
		closeBackends()
		_ = limiter.Close()
		_ = a.Dispatcher.Close(context.Background())
		return nil, err
	}
	return a, nil
}

// Handler is the broker's whole HTTP API.
func (a *App) Handler() http.Handler { return a.Broker.Handler() }

// HTTPServer is an http.Server for the API with server.*'s timeouts and
// header cap; the caller adds what is its own (error log, base context)
// and serves it.
func (a *App) HTTPServer() *http.Server {
	s := a.Config.Server
	return &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: s.ReadHeaderTimeout,
		ReadTimeout:       s.ReadTimeout,
		WriteTimeout:      s.WriteTimeout,
		IdleTimeout:       s.IdleTimeout,
		MaxHeaderBytes:    s.MaxHeaderBytes,
	}
}

// Drain makes /readyz answer 503 at once, so that a load balancer stops
// sending while requests in flight finish.
func (a *App) Drain() { a.Broker.Drain() }

// Shutdown gives pending webhook deliveries a last try within ctx. Call
// it after the HTTP server has stopped, so no new event arrives.
func (a *App) Shutdown(ctx context.Context) error {
	if err := a.Dispatcher.Close(ctx); err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	return nil
}

// Close stops the dispatcher if Shutdown has not, and releases the
// backends and the rate limiter.
func (a *App) Close() error {
	return errors.Join(a.Dispatcher.Close(context.Background()), a.Broker.Close())
}

// ticketKeys returns the configured keys, or an ephemeral one on loopback.
func ticketKeys(cfg *config.Config, logger *slog.Logger) ([][]byte, error) {
	if keys := cfg.TicketKeyBytes(); len(keys) > 0 {
		return keys, nil
	}
	if !config.IsLoopback(cfg.Server.Addr) {
		return nil, fmt.Errorf("secrets.ticket_keys: no ticket key, and server.addr %s is not loopback: set secrets.ticket_keys in the config, or %s in the environment, to a random string of at least %d bytes (for example `openssl rand -base64 48`)",
			cfg.Server.Addr, config.TicketKeyEnv, config.MinTicketKeySize)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generate ticket key: %w", err)
	}
	logger.Warn("no ticket key configured: using an ephemeral one, so uploads granted before a restart cannot be completed after it; set secrets.ticket_keys or " + config.TicketKeyEnv)
	return [][]byte{key}, nil
}

// openBackends opens every backend, each with its own signing key derived
// from the ticket key, so a driver never holds the key that signs tickets.
func openBackends(ctx context.Context, cfg *config.Config, ticketKey []byte, logger *slog.Logger) (map[string]drivers.Driver, error) {
	names := make([]string, 0, len(cfg.Backends))
	for name := range cfg.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make(map[string]drivers.Driver, len(names))
	for _, name := range names {
		bc := cfg.Backends[name]
		d, err := drivers.Open(ctx, bc.Driver, drivers.Settings(bc.Settings), drivers.Env{
			Backend:    name,
			BaseURL:    cfg.Server.PublicURL,
			SigningKey: signingKey(ticketKey, name),
			Logger:     logger.With("backend", name),
		})
		if err != nil {
			for _, opened := range out {
				_ = opened.Close()
			}
			return nil, fmt.Errorf("backends.%s: %w", name, err)
		}
		out[name] = d
	}
	return out, nil
}

// signingKey is the key a backend signs its own URLs with: an HMAC of the
// backend's name under the ticket key. Replicas sharing a ticket key thus
// verify each other's URLs, and a leaked backend key forges no ticket.
func signingKey(ticketKey []byte, backend string) []byte {
	mac := hmac.New(sha256.New, ticketKey)
	mac.Write([]byte("upbroker backend " + backend))
	return mac.Sum(nil)
}
