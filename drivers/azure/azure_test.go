package azure

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/internal/testenv"
)

// startAzure runs Azurite with one container and opens the driver on it.
func startAzure(t *testing.T) (*Driver, *testenv.Azurite) {
	t.Helper()
	az := testenv.StartAzurite(t)
	az.CreateContainer(t, "uploads")
	d, err := Open(context.Background(), drivers.Settings{
		"container":    "uploads",
		"account_name": az.Account,
		"account_key":  az.Key,
		"endpoint":     az.ServiceURL,
	}, drivers.Env{Backend: "azure"})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d, az
}

// do performs a grant the way a browser would.
func do(t *testing.T, g drivers.Grant, body []byte) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(g.Method, g.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range g.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", g.Method, g.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func putGrant(t *testing.T, d *Driver, key string, body []byte) drivers.Grant {
	t.Helper()
	g, err := d.PresignPut(context.Background(), key, drivers.Constraints{
		ContentType: "text/plain",
		Size:        int64(len(body)),
		Metadata:    map[string]string{"upbrokerprincipal": "u-1", "album": "x"},
		NoOverwrite: true,
		Expires:     5 * time.Minute,
	})
	if err != nil {
		t.Fatalf("presign put: %v", err)
	}
	return g
}

// TestSASEnforcedByAzurite proves that what the driver signs is what
// Azurite lets through, and nothing else.
func TestSASEnforcedByAzurite(t *testing.T) {
	d, _ := startAzure(t)
	body := []byte("hello azure")
	ctx := context.Background()

	// An object that exists before each overwrite attempt.
	first := putGrant(t, d, "existing.txt", body)
	if resp, b := do(t, first, body); resp.StatusCode != http.StatusCreated {
		t.Fatalf("first upload: %s %s", resp.Status, b)
	}

	expired := *d
	expired.now = func() time.Time { return time.Now().Add(-time.Hour) }

	tests := []struct {
		name   string
		key    string
		grant  func(t *testing.T) drivers.Grant
		status int
	}{
		{"valid upload", "fresh.txt", func(t *testing.T) drivers.Grant { return putGrant(t, d, "fresh.txt", body) }, http.StatusCreated},
		{"overwrite refused", "existing.txt", func(t *testing.T) drivers.Grant { return putGrant(t, d, "existing.txt", body) }, http.StatusForbidden},
		{"tampered signature", "tampered.txt", func(t *testing.T) drivers.Grant {
			g := putGrant(t, d, "tampered.txt", body)
			u, _ := url.Parse(g.URL)
			q := u.Query()
			sig := []byte(q.Get("sig"))
			sig[3] ^= 1 // still base64, different bytes
			if sig[3] == '+' || sig[3] == '/' {
				sig[3] = 'A'
			}
			q.Set("sig", string(sig))
			u.RawQuery = q.Encode()
			g.URL = u.String()
			return g
		}, http.StatusForbidden},
		{"permission widened", "widened.txt", func(t *testing.T) drivers.Grant {
			g := putGrant(t, d, "widened.txt", body)
			g.URL = strings.Replace(g.URL, "sp=c&", "sp=cw&", 1)
			if !strings.Contains(g.URL, "sp=cw") {
				t.Fatalf("no sp=c in %s", g.URL)
			}
			return g
		}, http.StatusForbidden},
		{"expired", "expired.txt", func(t *testing.T) drivers.Grant { return putGrant(t, &expired, "expired.txt", body) }, http.StatusForbidden},
		{"wrong blob", "other.txt", func(t *testing.T) drivers.Grant {
			g := putGrant(t, d, "signed-for-this.txt", body)
			g.URL = strings.Replace(g.URL, "/signed-for-this.txt?", "/other.txt?", 1)
			return g
		}, http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, tc.grant(t), body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s, want %d: %s", resp.Status, tc.status, b)
			}
			_, err := d.Stat(ctx, tc.key)
			switch {
			case tc.status == http.StatusCreated && err != nil:
				t.Fatalf("stat after accepted upload: %v", err)
			case tc.status != http.StatusCreated && tc.key != "existing.txt" && !errors.Is(err, drivers.ErrNotFound):
				t.Fatalf("refused upload left an object (stat err %v)", err)
			}
		})
	}

	// What the accepted upload stored is what was granted.
	info, err := d.Stat(ctx, "fresh.txt")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(body)) || info.ContentType != "text/plain" ||
		info.Metadata["upbrokerprincipal"] != "u-1" || info.Metadata["album"] != "x" || info.ETag == "" || strings.Contains(info.ETag, `"`) {
		t.Fatalf("stat = %+v", info)
	}
}

func TestPresignGetAzurite(t *testing.T) {
	d, _ := startAzure(t)
	ctx := context.Background()
	body := []byte("download me")
	if resp, b := do(t, putGrant(t, d, "dl/file.txt", body), body); resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s %s", resp.Status, b)
	}
	tests := []struct {
		name        string
		filename    string
		disposition string
	}{
		{"plain", "", ""},
		{"with filename", "report é.txt", `attachment; filename="report _.txt"; filename*=UTF-8''report%20%C3%A9.txt`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := d.PresignGet(ctx, "dl/file.txt", drivers.GetOptions{Expires: time.Minute, Filename: tc.filename})
			if err != nil {
				t.Fatal(err)
			}
			resp, b := do(t, g, nil)
			if resp.StatusCode != http.StatusOK || b != string(body) {
				t.Fatalf("get: %s %q", resp.Status, b)
			}
			if got := resp.Header.Get("Content-Disposition"); got != tc.disposition {
				t.Fatalf("Content-Disposition %q, want %q", got, tc.disposition)
			}
			// A read SAS cannot write.
			g.Method = http.MethodPut
			g.Headers = map[string]string{"x-ms-blob-type": "BlockBlob"}
			if resp, b := do(t, g, []byte("x")); resp.StatusCode != http.StatusForbidden {
				t.Fatalf("put with read SAS: %s %s", resp.Status, b)
			}
		})
	}
}

func TestErrorMapping(t *testing.T) {
	d, _ := startAzure(t)
	ctx := context.Background()

	// A port nobody listens on: the store is unreachable.
	port := testenv.FreePort(t)
	down, err := Open(ctx, drivers.Settings{
		"container": "uploads", "account_name": testenv.AzuriteAccount, "account_key": testenv.AzuriteKey,
		"endpoint": "http://127.0.0.1:" + strconv.Itoa(port) + "/" + testenv.AzuriteAccount,
	}, drivers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()

	tests := []struct {
		name string
		call func(context.Context) error
		want error
	}{
		{"stat missing", func(ctx context.Context) error { _, err := d.Stat(ctx, "nope"); return err }, drivers.ErrNotFound},
		{"read missing", func(ctx context.Context) error { _, err := d.ReadRange(ctx, "nope", 0, 10); return err }, drivers.ErrNotFound},
		{"delete missing", func(ctx context.Context) error { return d.Delete(ctx, "nope") }, nil},
		{"ping", d.Ping, nil},
		{"stat unreachable", func(ctx context.Context) error { _, err := down.Stat(ctx, "x"); return err }, drivers.ErrUnavailable},
		{"ping unreachable", down.Ping, drivers.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			err := tc.call(ctx)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), testenv.AzuriteKey) {
				t.Fatalf("error text carries the account key: %v", err)
			}
		})
	}
}

func TestOpenSettings(t *testing.T) {
	tests := []struct {
		name    string
		s       drivers.Settings
		wantErr string
	}{
		{"account key", drivers.Settings{"container": "c-1", "account_name": "acct", "account_key": testenv.AzuriteKey}, ""},
		{"connection string", drivers.Settings{"container": "c-1", "connection_string": "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + testenv.AzuriteKey + ";EndpointSuffix=core.windows.net"}, ""},
		{"dev storage", drivers.Settings{"container": "c-1", "connection_string": "UseDevelopmentStorage=true"}, ""},
		{"no credentials", drivers.Settings{"container": "c-1"}, "account_name"},
		{"key without name", drivers.Settings{"container": "c-1", "account_key": testenv.AzuriteKey}, "account_name"},
		{"name without key", drivers.Settings{"container": "c-1", "account_name": "acct"}, "account_key"},
		{"both", drivers.Settings{"container": "c-1", "account_name": "acct", "connection_string": "UseDevelopmentStorage=true"}, "connection_string"},
		{"bad key", drivers.Settings{"container": "c-1", "account_name": "acct", "account_key": "not base64!"}, "account_key"},
		{"bad container", drivers.Settings{"container": "Bad_Name", "account_name": "acct", "account_key": testenv.AzuriteKey}, "container"},
		{"sas-only connection string", drivers.Settings{"container": "c-1", "connection_string": "BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=x"}, "connection_string"},
		{"bad endpoint", drivers.Settings{"container": "c-1", "account_name": "acct", "account_key": testenv.AzuriteKey, "endpoint": "ftp://x"}, "endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := drivers.Open(context.Background(), Name, tc.s, drivers.Env{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				_ = d.Close()
				return
			}
			if !errors.Is(err, drivers.ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrConfig naming %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), testenv.AzuriteKey) {
				t.Fatalf("error text carries the key: %v", err)
			}
		})
	}
}

func TestPresignPutShape(t *testing.T) {
	d, err := Open(context.Background(), drivers.Settings{"container": "c-1", "account_name": "acct", "account_key": testenv.AzuriteKey}, drivers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		c         drivers.Constraints
		wantPerm  string
		overwrite drivers.Enforcement
		wantErr   error
	}{
		{"create only", drivers.Constraints{ContentType: "image/png", Size: 10, NoOverwrite: true, Expires: time.Minute, Metadata: map[string]string{"upbrokerprofile": "images"}}, "c", drivers.BySignature, nil},
		{"overwrite allowed", drivers.Constraints{ContentType: "image/png", Size: 10, Expires: time.Minute}, "cw", drivers.NotEnforced, nil},
		{"hyphenated metadata", drivers.Constraints{Size: 1, Expires: time.Minute, Metadata: map[string]string{"my-key": "v"}}, "", "", drivers.ErrInvalid},
		{"too large", drivers.Constraints{Size: MaxSinglePut + 1, Expires: time.Minute}, "", "", drivers.ErrInvalid},
		{"no expiry", drivers.Constraints{Size: 1}, "", "", drivers.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now()
			g, err := d.PresignPut(context.Background(), "a/b c.png", tc.c)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(g.URL)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			if q.Get("sp") != tc.wantPerm || q.Get("sr") != "b" || q.Get("spr") != "https" {
				t.Fatalf("sas params %v", q)
			}
			if u.EscapedPath() != "/c-1/a/b%20c.png" || u.Host != "acct.blob.core.windows.net" {
				t.Fatalf("url %s", g.URL)
			}
			st, _ := time.Parse(time.RFC3339, q.Get("st"))
			if !st.Before(before.Add(-ClockSkew + time.Second)) {
				t.Fatalf("start %v is not %v in the past", st, ClockSkew)
			}
			se, _ := time.Parse(time.RFC3339, q.Get("se"))
			if !se.Equal(g.ExpiresAt) {
				t.Fatalf("ExpiresAt %v, se %v", g.ExpiresAt, se)
			}
			if g.Headers["x-ms-blob-type"] != "BlockBlob" || g.Headers["x-ms-blob-content-type"] != tc.c.ContentType {
				t.Fatalf("headers %v", g.Headers)
			}
			for k, v := range tc.c.Metadata {
				if g.Headers["x-ms-meta-"+k] != v {
					t.Fatalf("metadata %s missing from headers %v", k, g.Headers)
				}
			}
			if g.Enforced.NoOverwrite != tc.overwrite || g.Enforced.Size != drivers.AfterUpload {
				t.Fatalf("enforced %+v", g.Enforced)
			}
		})
	}
}

func BenchmarkPresignPut(b *testing.B) {
	d, err := Open(context.Background(), drivers.Settings{"container": "c-1", "account_name": "acct", "account_key": testenv.AzuriteKey}, drivers.Env{})
	if err != nil {
		b.Fatal(err)
	}
	c := drivers.Constraints{ContentType: "image/png", Size: 48213, NoOverwrite: true, Expires: 5 * time.Minute,
		Metadata: map[string]string{"upbrokerprincipal": "u-42", "upbrokerprofile": "images"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.PresignPut(ctx, "images/u-42/0f3c.png", c); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCORSPreflight proves that testenv's CORS rule lets a browser on
// another origin send every header of a grant, and that without the rule
// Azurite refuses, as Azure does.
func TestCORSPreflight(t *testing.T) {
	d, az := startAzure(t)
	g := putGrant(t, d, "cors.txt", []byte("x"))
	var names []string
	for k := range g.Headers {
		names = append(names, strings.ToLower(k))
	}
	preflight := func() int {
		req, _ := http.NewRequest(http.MethodOptions, g.URL, nil)
		req.Header.Set("Origin", "http://127.0.0.1:8080")
		req.Header.Set("Access-Control-Request-Method", "PUT")
		req.Header.Set("Access-Control-Request-Headers", strings.Join(names, ","))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := preflight(); st == http.StatusOK {
		t.Fatalf("preflight without a CORS rule answered %d", st)
	}
	az.AllowCORS(t, "http://127.0.0.1:8080")
	if st := preflight(); st != http.StatusOK {
		t.Fatalf("preflight with the CORS rule answered %d", st)
	}
}
