// Package apptest parses configs for tests that build a broker with
// app.Build, the way `upbroker serve` does.
package apptest

import (
	"bytes"
	"testing"
	"text/template"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/internal/app"
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
