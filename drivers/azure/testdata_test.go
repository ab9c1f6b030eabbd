package azure

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/internal/testenv"
)

// TestExampleConfig proves that testdata/azure.yaml passes config validation
// and opens with this driver.
func TestExampleConfig(t *testing.T) {
	cfg, err := config.Load(filepath.Join(testenv.RepoRoot(), "testdata", "azure.yaml"), config.LoadOptions{
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
	b := cfg.Backends["azure"]
	d, err := drivers.Open(context.Background(), b.Driver, b.Settings, drivers.Env{Backend: "azure"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	_ = d.Close()
}
