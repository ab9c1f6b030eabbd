package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOVersion is the server version scripts/test-deps.sh installs.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIO is a MinIO server started for a test, on 127.0.0.1 with a
// temporary data folder.
type MinIO struct {
	// Endpoint is http://127.0.0.1:<port>.
	Endpoint  string
	AccessKey string
	SecretKey string
	// Addr is 127.0.0.1:<port>.
	Addr string

	bin     string
	dir     string
	console string
	proc    *Proc
}

// StartMinIO starts a server and waits until it is ready. Root credentials
// come from MINIO_ROOT_USER and MINIO_ROOT_PASSWORD when set, else they are
// random. CORS is opened to every origin (MINIO_API_CORS_ALLOW_ORIGIN=*),
// MinIO's only CORS switch: this build answers PutBucketCors with
// NotImplemented.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin, err := Binary("minio")
	if err != nil {
		Unavailable(t, "minio server binary not found in .cache/bin or PATH")
		return nil
	}
	m := &MinIO{
		AccessKey: envOr("MINIO_ROOT_USER", "upbroker-"+randHex(4)),
		SecretKey: envOr("MINIO_ROOT_PASSWORD", randHex(16)),
		bin:       bin,
		dir:       t.TempDir(),
	}
	m.Addr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	m.console = "127.0.0.1:" + strconv.Itoa(FreePort(t))
	m.Endpoint = "http://" + m.Addr
	m.start(t)
	return m
}

func (m *MinIO) start(t testing.TB) {
	t.Helper()
	env := []string{
		"MINIO_ROOT_USER=" + m.AccessKey,
		"MINIO_ROOT_PASSWORD=" + m.SecretKey,
		"MINIO_API_CORS_ALLOW_ORIGIN=*",
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
	}
	m.proc = Start(t, "minio", env, m.bin, "server", m.dir,
		"--address", m.Addr, "--console-address", m.console, "--quiet")
	m.waitReady(t, 60*time.Second)
}

// waitReady polls the readiness probe; a deadline, not an assertion on
// timing: a noisy machine only makes this slower.
func (m *MinIO) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m.proc.Exited() {
			t.Fatalf("minio exited before it was ready:\n%s", m.proc.Output())
		}
		resp, err := client.Get(m.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("minio not ready at %s within %v:\n%s", m.Endpoint, timeout, m.proc.Output())
}

// Client is a minio-go client with the root credentials.
func (m *MinIO) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(m.Addr, &minio.Options{
		Creds:  credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Secure: false,
		Region: "us-east-1",
	})
	if err != nil {
		t.Fatalf("minio client: %v", err)
	}
	return c
}

// Bucket creates a bucket and returns its name.
func (m *MinIO) Bucket(t testing.TB, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Client(t).MakeBucket(ctx, name, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		t.Fatalf("make bucket %q: %v", name, err)
	}
	return name
}

// Stop ends the server; its data folder stays for Restart.
func (m *MinIO) Stop() { m.proc.Stop() }

// Restart starts the server again on the same port and data folder.
func (m *MinIO) Restart(t testing.TB) {
	t.Helper()
	m.proc.Stop()
	m.start(t)
}

// Output is what the server printed so far.
func (m *MinIO) Output() string { return m.proc.Output() }

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}
