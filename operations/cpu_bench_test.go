package operations_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/internal/app"
	"github.com/upbroker/upbroker/internal/apptest"
	"github.com/upbroker/upbroker/internal/testenv"
)

// benchYAML is the minio part of bench/upbench's config: api_key auth, a
// minio backend with no region (the default applies), no sniff, no rate
// limit, no webhooks.
const benchYAML = `
server:
  addr: %s
  public_url: http://%s
secrets:
  ticket_keys: ["%s"]
auth:
  mode: api_key
  api_keys:
    - {name: bench, sha256: "%s"}
backends:
  minio:
    driver: minio
    endpoint: %s
    bucket: %s
    access_key: %s
    secret_key: %s
profiles:
  minio: {backend: minio, content_types: [application/octet-stream], max_size: 64MiB, expires: 15m}
default_profile: minio
`

// serveBenchBroker builds the broker with app.Build, as `upbroker serve
// --log-level warn` does, and serves it on 127.0.0.1. Its goroutines
// carry the pprof label side=broker (net/http starts each connection's
// goroutine from Serve, and labels are inherited), so a CPU profile of the
// benchmark separates the broker's work from the client's with
// -tagfocus side=broker.
func serveBenchBroker(b *testing.B, m *testenv.MinIO, bucket string) (baseURL, apiKey string) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		b.Fatal(err)
	}
	apiKey, digest, err := auth.NewAPIKey()
	if err != nil {
		b.Fatal(err)
	}
	yaml := fmt.Sprintf(benchYAML, addr, addr, hex.EncodeToString(key), digest, m.Endpoint, bucket, m.AccessKey, m.SecretKey)
	cfg := apptest.Parse(b, yaml)
	// serve logs at warn here: debug lines would be the benchmark's cost.
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.Build(context.Background(), cfg, app.Options{Logger: logger})
	if err != nil {
		b.Fatalf("app.Build: %v", err)
	}
	b.Cleanup(func() { _ = a.Close() })
	srv := a.HTTPServer()
	go pprof.Do(context.Background(), pprof.Labels("side", "broker"), func(context.Context) { _ = srv.Serve(ln) })
	b.Cleanup(func() { _ = srv.Close() })
	return "http://" + addr, apiKey
}

type benchGrant struct {
	Upload *struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	} `json:"upload"`
	CompleteURL string `json:"complete_url"`
}

// directUpload is bench/upbench's uploadDirect: grant, PUT straight to
// MinIO with the granted headers, complete with {}.
func directUpload(client *http.Client, baseURL, apiKey string, payload []byte) error {
	body := fmt.Sprintf(`{"filename":"f.bin","content_type":"application/octet-stream","size":%d,"profile":"minio"}`, len(payload))
	req, _ := http.NewRequest(http.MethodPost, baseURL+"/v1/uploads", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", apiKey)
	raw, err := benchDo(client, req, http.StatusCreated)
	if err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	var g benchGrant
	if err := json.Unmarshal(raw, &g); err != nil {
		return fmt.Errorf("grant: %w", err)
	}
	if g.Upload == nil {
		return fmt.Errorf("grant has no single upload: %s", raw)
	}
	put, _ := http.NewRequest(g.Upload.Method, g.Upload.URL, bytes.NewReader(payload))
	for k, v := range g.Upload.Headers {
		put.Header.Set(k, v)
	}
	if _, err := benchDo(client, put, 0); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	done, _ := http.NewRequest(http.MethodPost, g.CompleteURL, strings.NewReader("{}"))
	done.Header.Set("Content-Type", "application/json")
	done.Header.Set("X-API-Key", apiKey)
	if _, err := benchDo(client, done, http.StatusOK); err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	return nil
}

func benchDo(client *http.Client, req *http.Request, want int) ([]byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if (want != 0 && resp.StatusCode != want) || (want == 0 && resp.StatusCode/100 != 2) {
		return nil, fmt.Errorf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
}

// BenchmarkDirectUpload is the broker's share of `make bench`'s direct
// phase: each op is one grant + PUT to MinIO + complete, 16 at a time.
// The op's time includes the client and the PUT; the broker's own CPU is
// read from a profile:
//
//	UPBROKER_INTEGRATION=1 go test ./operations/ -run '^$' -bench DirectUpload \
//	  -benchtime 2000x -cpuprofile /tmp/direct.prof
//	go tool pprof -top -tagfocus side=broker operations.test /tmp/direct.prof
func BenchmarkDirectUpload(b *testing.B) {
	m := testenv.StartMinIO(b)
	if m == nil {
		return
	}
	bucket := m.Bucket(b, "bench")
	baseURL, apiKey := serveBenchBroker(b, m, bucket)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(client.CloseIdleConnections)
	payload := make([]byte, 4<<10)
	_, _ = rand.Read(payload)
	// Warm up: connections, the credential and bucket-location caches.
	for range 16 {
		if err := directUpload(client, baseURL, apiKey, payload); err != nil {
			b.Fatal(err)
		}
	}
	b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	pprof.Do(context.Background(), pprof.Labels("side", "client"), func(context.Context) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := directUpload(client, baseURL, apiKey, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	// Wall time per op is mostly MinIO's (another process); this process's
	// CPU (broker and client together) is what a change here moves.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the user and system CPU this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
