package gcs

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/internal/testenv"
)

// TestExampleConfig proves that testdata/gcs.yaml passes config validation
// and opens with this driver.
func TestExampleConfig(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	cfg, err := config.Load(filepath.Join(testenv.RepoRoot(), "testdata", "gcs.yaml"), config.LoadOptions{
		BackendSpec: func(name string) ([]string, []string, []string, bool) {
			s, ok := drivers.Lookup(name)
			return s.Keys, s.Required, s.Secret, ok
		},
		Drivers:   drivers.Names(),
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	b := cfg.Backends["gcs"]
	d, err := drivers.Open(context.Background(), b.Driver, b.Settings, drivers.Env{Backend: "gcs"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	_ = d.Close()
}
