package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/internal/app"
	"github.com/upbroker/upbroker/internal/apptest"
)

// configYAML is a file backend behind auth mode none; ADDR, KEYS and DATA
// are filled in per test.
const configYAML = `
server: {addr: "ADDR", public_url: "http://broker.test"}
KEYS
auth: {mode: none}
backends:
  local: {driver: file, path: "DATA"}
profiles:
  docs: {backend: local, content_types: [text/plain], max_size: 1KiB}
default_profile: docs
`

func parse(t *testing.T, addr, keys, dir string) *config.Config {
	t.Helper()
	text := strings.NewReplacer("ADDR", addr, "KEYS", keys, "DATA", dir).Replace(configYAML)
	return apptest.Parse(t, text)
}

func build(t *testing.T, cfg *config.Config, logs io.Writer) *app.App {
	t.Helper()
	a, err := app.Build(context.Background(), cfg, app.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a
}

func ticketKeys(k string) string { return fmt.Sprintf("secrets: {ticket_keys: [%q]}", k) }

var (
	keyA = strings.Repeat("a", 40)
	keyB = strings.Repeat("b", 40)
)

// TestBuildRefuses checks what config validation also refuses: Build
// must hold on its own for a config that was built or changed in code.
func TestBuildRefuses(t *testing.T) {
	tests := []struct {
		name, keys, want string
	}{
		{"no ticket key off loopback", "", "secrets.ticket_keys"},
		{"auth none off loopback", ticketKeys(keyA), "allow_anonymous"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parse(t, "127.0.0.1:8080", tc.keys, t.TempDir())
			cfg.Server.Addr = "0.0.0.0:8080"
			a, err := app.Build(context.Background(), cfg, app.Options{Logger: slog.New(slog.DiscardHandler)})
			if err == nil {
				_ = a.Close()
				t.Fatal("Build succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestEphemeralTicketKeyOnLoopback(t *testing.T) {
	var logs bytes.Buffer
	a := build(t, parse(t, "127.0.0.1:8080", "", t.TempDir()), &logs)
	if len(a.TicketKeys) != 1 || len(a.TicketKeys[0]) != 32 {
		t.Fatalf("ticket keys: %d keys", len(a.TicketKeys))
	}
	if !strings.Contains(logs.String(), "ephemeral") {
		t.Fatalf("no warning about the ephemeral key:\n%s", logs.String())
	}
}

// TestReplicasVerifyEachOther grants an upload on one app and sends the
// file to another built from the same ticket key: the file driver's
// signing key must be derived from the ticket key alone, or a load
// balancer in front of replicas would break uploads. With another ticket
// key the URL must be refused.
func TestReplicasVerifyEachOther(t *testing.T) {
	tests := []struct {
		name       string
		otherKey   string
		wantStatus int
	}{
		{"same ticket key", keyA, http.StatusOK},
		{"other ticket key", keyB, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			granter := build(t, parse(t, "127.0.0.1:8080", ticketKeys(keyA), dir), io.Discard)
			uploader := build(t, parse(t, "127.0.0.1:8080", ticketKeys(tc.otherKey), dir), io.Discard)

			body := `{"filename":"a.txt","content_type":"text/plain","size":5}`
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, "/v1/uploads", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			granter.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusCreated {
				t.Fatalf("grant: %d %s", rec.Code, rec.Body)
			}
			var g struct {
				Upload struct {
					Method, URL string
					Headers     map[string]string
				}
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &g); err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(g.Upload.URL)
			if err != nil {
				t.Fatal(err)
			}
			put := httptest.NewRequest(g.Upload.Method, u.RequestURI(), strings.NewReader("hello"))
			for k, v := range g.Upload.Headers {
				put.Header.Set(k, v)
			}
			rec = httptest.NewRecorder()
			uploader.Handler().ServeHTTP(rec, put)
			if rec.Code != tc.wantStatus {
				t.Fatalf("upload to the other replica: %d %s, want %d", rec.Code, rec.Body, tc.wantStatus)
			}
		})
	}
}
