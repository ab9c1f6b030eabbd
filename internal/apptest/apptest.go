// Package apptest parses configs and builds brokers for tests, the way
// `upbroker serve` does (app.Build), so that every test harness starts
// the same thing.
package apptest

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"text/template"
	"time"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/internal/app"
	"github.com/upbroker/upbroker/internal/testenv"
)

// Parse parses a config as serve loads one, backend settings checked
// against the driver registry, but without the environment, so that a
// test does not depend on the caller's UPBROKER_* variables. A bad config
// fails the test with its text.
func Parse(t testing.TB, text string) *config.Config {
	t.Helper()
	lo := app.LoadOptions()
	lo.LookupEnv = func(string) (string, bool) { return "", false }
	cfg, err := config.Parse([]byte(text), lo)
	if err != nil {
		t.Fatalf("config:\n%s\n%v", text, err)
	}
	return cfg
}

// Render executes the template tmpl with v, a missing key being an
// error, and parses the result with Parse.
func Render(t testing.TB, tmpl string, v any) *config.Config {
	t.Helper()
	var text bytes.Buffer
	if err := template.Must(template.New("config").Option("missingkey=error").Parse(tmpl)).Execute(&text, v); err != nil {
		t.Fatalf("config template: %v", err)
	}
	return Parse(t, text.String())
}

// Broker is a broker built by Build, with the log it wrote.
type Broker struct {
	*app.App
	// Logs holds every line the broker logged, at debug level.
	Logs *testenv.LockedBuffer
}

// Options shape Build. The zero value logs text.
type Options struct {
	// App is passed to app.Build; its Logger is Build's own.
	App app.Options
	// JSONLogs logs JSON, for tests that parse log lines.
	JSONLogs bool
}

// Build builds the broker from cfg as `upbroker serve` does (app.Build),
// logging at debug level into Logs, which the test prints if it fails.
// When the test ends, pending webhooks get a last try and the broker is
// closed.
func Build(t testing.TB, cfg *config.Config, o Options) *Broker {
	t.Helper()
	b := &Broker{Logs: &testenv.LockedBuffer{}}
	ho := &slog.HandlerOptions{Level: slog.LevelDebug}
	var h slog.Handler = slog.NewTextHandler(b.Logs, ho)
	if o.JSONLogs {
		h = slog.NewJSONHandler(b.Logs, ho)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- log of the broker at %s ---\n%s", cfg.Server.PublicURL, b.Logs.String())
		}
	})
	opts := o.App
	opts.Logger = slog.New(h)
	a, err := app.Build(context.Background(), cfg, opts)
	if err != nil {
		t.Fatalf("app.Build: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = a.Shutdown(ctx)
		_ = a.Close()
	})
	b.App = a
	return b
}
