package app_test

import (
	"context"
	"log/slog"
	"path/filepath"
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
