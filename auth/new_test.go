package auth

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/upbroker/upbroker/config"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestNewModes(t *testing.T) {
	cases := []struct {
		name    string
		cfg     config.Auth
		wantErr string
	}{
		{name: "none", cfg: config.Auth{Mode: "none"}},
		{name: "empty mode is refused", cfg: config.Auth{}, wantErr: "auth.mode: required"},
		{name: "unknown mode", cfg: config.Auth{Mode: "oauth"}, wantErr: "auth.mode"},
		{name: "mode is case-sensitive", cfg: config.Auth{Mode: "API_KEY"}, wantErr: "auth.mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuf
			a, err := New(tc.cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, err := a.Authenticate(httptest.NewRequest("GET", "/", nil))
			if err != nil || !p.Anonymous || p.ID != "anonymous" {
				t.Fatalf("mode none: %+v, %v", p, err)
			}
			if !strings.Contains(logs.String(), "level=WARN") {
				t.Fatalf("mode none logged no warning: %s", logs.String())
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	cases := []struct {
		cfg  config.Auth
		addr string
		ok   bool
	}{
		{config.Auth{Mode: "none"}, "127.0.0.1:8080", true},
		{config.Auth{Mode: "none"}, "localhost:8080", true},
		{config.Auth{Mode: "none"}, "[::1]:8080", true},
		{config.Auth{Mode: "none"}, ":8080", false},
		{config.Auth{Mode: "none"}, "0.0.0.0:8080", false},
		{config.Auth{Mode: "none"}, "10.0.0.5:8080", false},
		{config.Auth{Mode: "none", AllowAnonymous: true}, "0.0.0.0:8080", true},
		{config.Auth{Mode: "api_key"}, "0.0.0.0:8080", true},
		{config.Auth{Mode: "none"}, "nonsense", false},
	}
	for _, tc := range cases {
		err := CheckListen(tc.cfg, tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListen(%+v, %q) = %v, want ok=%v", tc.cfg, tc.addr, err, tc.ok)
		}
	}
}
