package auth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/internal/testenv"
	"github.com/upbroker/upbroker/ratelimit"
)

// TestExampleConfigs loads the example configs in testdata/ as a user
// would, and builds their authenticator and limiter; for the API key
// files it also tries the test-only keys documented in their comments.
func TestExampleConfigs(t *testing.T) {
	keyRE := regexp.MustCompile(`upb_test_only_[A-Za-z0-9_]+`)
	cases := []struct {
		file string
		mode string
	}{
		{"secure.yaml", auth.ModeAPIKey},
		{"auth-apikey.yaml", auth.ModeAPIKey},
		{"auth-jwt.yaml", auth.ModeJWT},
		{"auth-forward.yaml", auth.ModeForward},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(testenv.RepoRoot(), "testdata", tc.file)
			cfg, err := config.Load(path, config.LoadOptions{LookupEnv: func(string) (string, bool) { return "", false }})
			if err != nil {
				t.Fatalf("config.Load: %v", err)
			}
			if cfg.Auth.Mode != tc.mode {
				t.Fatalf("auth.mode = %q, want %q", cfg.Auth.Mode, tc.mode)
			}
			a, err := auth.New(cfg.Auth, log)
			if err != nil {
				t.Fatalf("auth.New: %v", err)
			}
			if err := auth.CheckListen(cfg.Auth, cfg.Server.Addr); err != nil {
				t.Fatalf("CheckListen: %v", err)
			}
			l, err := ratelimit.New(context.Background(), cfg.RateLimit, log)
			if err != nil {
				t.Fatalf("ratelimit.New: %v", err)
			}
			l.Close()
			if _, err := a.Authenticate(httptest.NewRequest("POST", "/v1/uploads", nil)); !errors.Is(err, auth.ErrUnauthorized) {
				t.Fatalf("no credentials: %v, want ErrUnauthorized", err)
			}
			if tc.mode != auth.ModeAPIKey {
				return
			}
			raw, _ := os.ReadFile(path)
			keys := keyRE.FindAllString(string(raw), -1)
			if len(keys) == 0 {
				t.Fatal("no test-only key documented in the file")
			}
			for _, k := range keys {
				r := httptest.NewRequest("POST", "/v1/uploads", nil)
				r.Header.Set("Authorization", "Bearer "+k)
				if p, err := a.Authenticate(r); err != nil || p.ID == "" {
					t.Fatalf("documented key %s: %+v, %v", k, p, err)
				}
			}
		})
	}
}

// TestSecureYAMLLimit: the 61st grant within a minute is refused.
func TestSecureYAMLLimit(t *testing.T) {
	cfg, err := config.Load(filepath.Join(testenv.RepoRoot(), "testdata", "secure.yaml"), config.LoadOptions{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ratelimit.New(context.Background(), cfg.RateLimit, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 1; i <= 61; i++ {
		d, err := l.Take(context.Background(), "test", 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed != (i <= 60) {
			t.Fatalf("grant %d: %+v", i, d)
		}
		if i == 61 && (d.Reason != ratelimit.ReasonGrants || d.RetryAfterSeconds() < 1) {
			t.Fatalf("grant 61: %+v", d)
		}
	}
}
