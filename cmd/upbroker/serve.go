package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/internal/version"
	"github.com/upbroker/upbroker/metrics"
	"github.com/upbroker/upbroker/ratelimit"
	"github.com/upbroker/upbroker/webhook"
)

// configEnv names the config file when --config is not given.
const configEnv = "UPBROKER_CONFIG"

func newServeCmd(g *globals) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the broker's HTTP API",
		Long: `serve loads the config, opens every backend and listens on server.addr.

The config file comes from --config, or else from $UPBROKER_CONFIG. Any key
can be overridden with UPBROKER_<PATH> (UPBROKER_SERVER_ADDR=...).

Without secrets.ticket_keys (or $UPBROKER_TICKET_KEY), serve generates an
ephemeral key if it listens on loopback, and refuses to start otherwise.

On SIGTERM or SIGINT, /readyz turns 503 at once, requests in flight get up
to server.shutdown_timeout to finish, pending webhooks get a last try in
what is left of it, and the process exits 0. A second signal stops at once.
Logs go to stderr.`,
		Example: `  upbroker serve --config upbroker.yaml
  UPBROKER_CONFIG=/etc/upbroker/config.yaml upbroker serve --log-format text
  UPBROKER_TICKET_KEY="$(openssl rand -base64 48)" upbroker serve --config prod.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				path = os.Getenv(configEnv)
			}
			if path == "" {
				return fmt.Errorf("no config file: pass --config FILE or set %s (`upbroker config example` prints one)", configEnv)
			}
			logger, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return serve(ctx, stop, path, logger)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML); default $"+configEnv)
	return cmd
}

// serve runs until ctx ends (a signal), then shuts down gracefully.
// stopSignals restores default signal handling, so that a second signal
// during shutdown kills the process.
func serve(ctx context.Context, stopSignals func(), path string, logger *slog.Logger) error {
	cfg, err := config.Load(path, loadOptions())
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			return fmt.Errorf("%s is not valid:\n%w", path, err)
		}
		return err
	}
	logger.Debug("config loaded", "path", path, "addr", cfg.Server.Addr, "public_url", cfg.Server.PublicURL)
	keys, err := ticketKeys(cfg, logger)
	if err != nil {
		return err
	}
	if err := auth.CheckListen(cfg.Auth, cfg.Server.Addr); err != nil {
		return err
	}

	backends, err := openBackends(ctx, cfg, keys[0], logger)
	if err != nil {
		return err
	}
	closeBackends := func() {
		for name, d := range backends {
			if err := d.Close(); err != nil {
				logger.Warn("close backend", "backend", name, "err", err)
			}
		}
	}
	authn, err := auth.New(cfg.Auth, logger)
	if err != nil {
		closeBackends()
		return err
	}
	limiter, err := ratelimit.New(ctx, cfg.RateLimit, logger)
	if err != nil {
		closeBackends()
		return err
	}
	m := metrics.New()
	dispatcher, err := webhook.NewDispatcher(cfg.Webhooks, webhook.Options{Logger: logger, OnDelivery: m.WebhookDelivery})
	if err != nil {
		closeBackends()
		_ = limiter.Close()
		return err
	}
	b, err := broker.New(broker.Options{
		Config: cfg, Backends: backends, TicketKeys: keys, Auth: authn,
		Limiter: limiter, Events: dispatcher, Metrics: m, Logger: logger,
	})
	if err != nil {
		closeBackends()
		_ = limiter.Close()
		_ = dispatcher.Close(context.Background())
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			logger.Warn("close", "err", err)
		}
	}()

	srv := &http.Server{
		Handler:           b.Handler(),
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		ReadTimeout:       cfg.Server.ReadTimeout,
		WriteTimeout:      cfg.Server.WriteTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		_ = dispatcher.Close(context.Background())
		return fmt.Errorf("server.addr: %w", err)
	}
	logger.Info("upbroker listening", "addr", ln.Addr().String(), "public_url", cfg.Server.PublicURL,
		"version", version.Version, "auth_mode", cfg.Auth.Mode, "backends", len(backends), "profiles", len(cfg.Profiles))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		_ = dispatcher.Close(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stopSignals()
	return shutdown(srv, b, dispatcher, cfg.Server.ShutdownTimeout, logger)
}

// shutdown drains in order: readiness first (so a load balancer stops
// sending), then requests in flight, then webhooks, all within one
// deadline.
func shutdown(srv *http.Server, b *broker.Broker, d *webhook.Dispatcher, timeout time.Duration, logger *slog.Logger) error {
	logger.Info("shutting down: draining requests in flight", "timeout", timeout.String())
	b.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		errs = append(errs, fmt.Errorf("requests still in flight after server.shutdown_timeout (%s) were cut: %w", timeout, err))
	}
	if err := d.Close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("webhooks: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("stopped cleanly")
	return nil
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
		mac := hmac.New(sha256.New, ticketKey)
		mac.Write([]byte("upbroker backend " + name))
		d, err := drivers.Open(ctx, bc.Driver, drivers.Settings(bc.Settings), drivers.Env{
			Backend:    name,
			BaseURL:    cfg.Server.PublicURL,
			SigningKey: mac.Sum(nil),
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
