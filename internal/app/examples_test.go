package app_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/internal/app"
	"github.com/upbroker/upbroker/internal/testenv"
)

// TestExampleConfigs proves that the emulator configs shipped in testdata/
// pass validation against the driver registry, as `upbroker config check`
// loads them, and that their backends open. Opening makes no network call,
// so no emulator is needed.
func TestExampleConfigs(t *testing.T) {
	tests := []struct {
		file, backend string
	}{
		{"gcs.yaml", "gcs"},
		{"azure.yaml", "azure"},
		{"minio.yaml", "minio"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			// The gcs driver would take an emulator from here instead of
			// the config's endpoint.
			t.Setenv("STORAGE_EMULATOR_HOST", "")
			lo := app.LoadOptions()
			lo.LookupEnv = func(string) (string, bool) { return "", false }
			cfg, err := config.Load(filepath.Join(testenv.RepoRoot(), "testdata", tc.file), lo)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			b, ok := cfg.Backends[tc.backend]
			if !ok {
				t.Fatalf("no backend %q", tc.backend)
			}
			d, err := drivers.Open(context.Background(), b.Driver, b.Settings, drivers.Env{Backend: tc.backend, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
		})
	}
}

// TestDocsDriverTable holds the driver table of docs/config.md to the
// registry: every driver, each setting, which are required (bold) and which
// are secret.
func TestDocsDriverTable(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "config.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z0-9]+)` \\|([^|]*)\\|([^|]*)\\|$")
	setting := regexp.MustCompile("(\\*\\*)?`([a-z_]+)`")
	documented := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		spec, ok := drivers.Lookup(m[1])
		if !ok {
			continue // another table of the page
		}
		documented[m[1]] = true
		var keys, required, secret []string
		for _, s := range setting.FindAllStringSubmatch(m[2], -1) {
			keys = append(keys, s[2])
			if s[1] != "" {
				required = append(required, s[2])
			}
		}
		for _, s := range setting.FindAllStringSubmatch(m[3], -1) {
			secret = append(secret, s[2])
		}
		for _, c := range []struct {
			what      string
			doc, code []string
		}{{"settings", keys, spec.Keys}, {"required", required, spec.Required}, {"secret", secret, spec.Secret}} {
			if !slices.Equal(sorted(c.doc), sorted(c.code)) {
				t.Errorf("docs/config.md, driver %s: %s %v, the driver has %v", m[1], c.what, c.doc, c.code)
			}
		}
	}
	for _, name := range drivers.Names() {
		if !documented[name] {
			t.Errorf("docs/config.md has no row for driver %s", name)
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
