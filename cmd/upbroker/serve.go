package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/internal/app"
	"github.com/upbroker/upbroker/internal/version"
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

On SIGTERM or SIGINT, /readyz turns 503 at once. On SIGTERM the broker then
keeps serving for server.drain_delay (default 5s) so that load balancers
stop sending; SIGINT skips that wait. Then the listener closes, requests in
flight get up to server.shutdown_timeout to finish, pending webhooks get a
last try in what is left of it, and the process exits 0. A second signal
stops at once.
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
			ctx, stop, got := notifyContext(cmd.Context())
			defer stop()
			return serve(ctx, stop, got, path, logger)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "config file (YAML); default $"+configEnv)
	return cmd
}

// notifyContext is signal.NotifyContext that also tells which signal came:
// only SIGTERM, what orchestrators send, waits out the drain delay.
func notifyContext(parent context.Context) (context.Context, func(), func() os.Signal) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	var got atomic.Value
	go func() {
		select {
		case s := <-ch:
			got.Store(s)
			cancel()
		case <-ctx.Done():
		}
	}()
	stop := func() { signal.Stop(ch); cancel() }
	which := func() os.Signal { s, _ := got.Load().(os.Signal); return s }
	return ctx, stop, which
}

// serve runs until ctx ends (a signal), then shuts down gracefully.
// stopSignals restores default signal handling, so that a second signal
// during shutdown kills the process.
func serve(ctx context.Context, stopSignals func(), signalled func() os.Signal, path string, logger *slog.Logger) error {
	cfg, err := config.Load(path, app.LoadOptions())
	if err != nil {
		var es config.Errors
		if errors.As(err, &es) {
			return fmt.Errorf("%s is not valid:\n%w", path, err)
		}
		return err
	}
	logger.Debug("config loaded", "path", path, "addr", cfg.Server.Addr, "public_url", cfg.Server.PublicURL)
	a, err := app.Build(ctx, cfg, app.Options{Logger: logger})
	if err != nil {
		return err
	}
	defer func() {
		if err := a.Close(); err != nil {
			logger.Warn("close", "err", err)
		}
	}()

	srv := a.HTTPServer()
	srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("server.addr: %w", err)
	}
	logger.Info("upbroker listening", "addr", ln.Addr().String(), "public_url", cfg.Server.PublicURL,
		"version", version.Version, "auth_mode", cfg.Auth.Mode, "backends", len(a.Backends), "profiles", len(cfg.Profiles))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stopSignals()
	a.Drain()
	if d := cfg.Server.DrainDelay; d > 0 && signalled() == syscall.SIGTERM {
		logger.Info("draining: /readyz answers 503 while load balancers stop sending", "drain_delay", d.String())
		select {
		case <-time.After(d):
		case err := <-served:
			return fmt.Errorf("serve: %w", err)
		}
	}
	return shutdown(srv, a, cfg.Server.ShutdownTimeout, logger)
}

// shutdown drains in order: readiness first (so a load balancer stops
// sending), then requests in flight, then webhooks, all within one
// deadline.
func shutdown(srv *http.Server, a *app.App, timeout time.Duration, logger *slog.Logger) error {
	logger.Info("shutting down: draining requests in flight", "timeout", timeout.String())
	a.Drain() // already done by serve; kept so shutdown stands on its own
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var errs []error
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		errs = append(errs, fmt.Errorf("requests still in flight after server.shutdown_timeout (%s) were cut: %w", timeout, err))
	}
	if err := a.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("stopped cleanly")
	return nil
}
