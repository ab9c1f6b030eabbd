package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FakeGCS is a fake-gcs-server started for one test, with an in-memory
// backend. It checks no signatures.
type FakeGCS struct {
	// URL is the server's base URL, http://127.0.0.1:<port>.
	URL string
	// Host is 127.0.0.1:<port>, the value for STORAGE_EMULATOR_HOST.
	Host string
	Proc *Proc
}

// FakeGCSCORSHeaders are the request headers a browser sends with a gcs
// driver's upload grant (besides Content-Type, which the emulator always
// allows); the emulator's CORS preflight refuses any header not listed.
var FakeGCSCORSHeaders = []string{
	"x-goog-content-length-range",
	"x-goog-if-generation-match",
	"x-goog-meta-upbrokerprincipal",
	"x-goog-meta-upbrokerprofile",
}

// StartFakeGCS starts fake-gcs-server from .cache/bin (or PATH) on a free
// port, or marks the test Unavailable when it is not installed. Its CORS
// allowlist holds FakeGCSCORSHeaders plus extraCORSHeaders (for example
// x-goog-meta-album when a test sends client metadata from a browser).
func StartFakeGCS(t testing.TB, extraCORSHeaders ...string) *FakeGCS {
	t.Helper()
	bin, err := Binary("fake-gcs-server")
	if err != nil {
		Unavailable(t, "fake-gcs-server not installed: %v", err)
		return nil
	}
	port := FreePort(t)
	host := "127.0.0.1:" + strconv.Itoa(port)
	p := Start(t, "fake-gcs-server", nil, bin,
		"-scheme", "http", "-backend", "memory",
		"-host", "127.0.0.1", "-port", strconv.Itoa(port),
		// Signed URLs and object paths are answered only for this host.
		"-public-host", host, "-external-url", "http://"+host,
		"-cors-headers", strings.Join(append(append([]string{}, FakeGCSCORSHeaders...), extraCORSHeaders...), ","),
		"-log-level", "warn")
	p.WaitTCP(t, host, 30*time.Second)
	return &FakeGCS{URL: "http://" + host, Host: host, Proc: p}
}

// CreateBucket creates a bucket through the JSON API.
func (f *FakeGCS) CreateBucket(t testing.TB, name string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL+"/storage/v1/b?project=test", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("create bucket %s: %s: %s", name, resp.Status, b)
	}
}

// ObjectURL is the XML-API path of an object, for direct requests that
// bypass any signature check.
func (f *FakeGCS) ObjectURL(bucket, key string) string {
	return fmt.Sprintf("%s/%s/%s", f.URL, bucket, key)
}
