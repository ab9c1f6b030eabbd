package gcs

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// grantHeaders is how a verifier sees a client that sends exactly the
// grant's headers to the URL's host.
func grantHeaders(u *url.URL, h map[string]string) func(string) string {
	return func(name string) string {
		if name == "host" {
			return u.Hostname()
		}
		for k, v := range h {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return ""
	}
}

// TestV4SignatureIndependently verifies the driver's URLs with a verifier
// written from Google's spec and the test key's public half.
func TestV4SignatureIndependently(t *testing.T) {
	key, path, email := testKey(t)
	d, err := Open(context.Background(), drivers.Settings{"bucket": "my-bucket", "credentials_file": path}, drivers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()

	tests := []struct {
		name string
		// grant makes the URL; wantSigned lists headers that must be signed.
		grant      func() (drivers.Grant, error)
		method     string
		wantSigned []string
		wantQuery  map[string]string
	}{
		{
			name: "put with metadata",
			grant: func() (drivers.Grant, error) {
				return d.PresignPut(ctx, "images/u-42/0f3c.png", drivers.Constraints{
					ContentType: "image/png", Size: 48213, NoOverwrite: true, Expires: 5 * time.Minute,
					Metadata: map[string]string{"upbrokerprincipal": "u-42", "upbrokerprofile": "images", "album": "a b,c"},
				})
			},
			method: "PUT",
			wantSigned: []string{"content-type", "host", "x-goog-content-length-range", "x-goog-if-generation-match",
				"x-goog-meta-album", "x-goog-meta-upbrokerprincipal", "x-goog-meta-upbrokerprofile"},
		},
		{
			name: "put empty object",
			grant: func() (drivers.Grant, error) {
				return d.PresignPut(ctx, "k", drivers.Constraints{ContentType: "text/plain", Size: 0, NoOverwrite: true, Expires: time.Minute})
			},
			method:     "PUT",
			wantSigned: []string{"content-type", "host", "x-goog-content-length-range", "x-goog-if-generation-match"},
		},
		{
			name: "get with filename",
			grant: func() (drivers.Grant, error) {
				return d.PresignGet(ctx, "docs/a b+c.pdf", drivers.GetOptions{Expires: time.Hour, Filename: "Résumé 2026.pdf"})
			},
			method:     "GET",
			wantSigned: []string{"host"},
			wantQuery:  map[string]string{"response-content-disposition": `attachment; filename="R_sum_ 2026.pdf"; filename*=UTF-8''R%C3%A9sum%C3%A9%202026.pdf`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := tc.grant()
			if err != nil {
				t.Fatal(err)
			}
			if g.Method != tc.method {
				t.Fatalf("method %s", g.Method)
			}
			u, err := url.Parse(g.URL)
			if err != nil {
				t.Fatal(err)
			}
			if u.Scheme != "https" || u.Host != "storage.googleapis.com" || !strings.HasPrefix(u.Path, "/my-bucket/") {
				t.Fatalf("url %s", g.URL)
			}
			if got := u.Query().Get("X-Goog-Credential"); !strings.HasPrefix(got, email+"/") {
				t.Fatalf("credential %q", got)
			}
			signed, err := v4Verify(v4Request{Method: tc.method, URL: u, Header: grantHeaders(u, g.Headers)}, &key.PublicKey, time.Now())
			if err != nil {
				t.Fatalf("independent verification failed: %v\nurl: %s", err, g.URL)
			}
			if strings.Join(signed, ";") != strings.Join(tc.wantSigned, ";") {
				t.Errorf("signed headers %v, want %v", signed, tc.wantSigned)
			}
			// Every header the client is told to send is signed: none can be
			// dropped or changed without GCS noticing.
			for k := range g.Headers {
				if !contains(signed, strings.ToLower(k)) {
					t.Errorf("grant header %s is not among X-Goog-SignedHeaders %v", k, signed)
				}
			}
			for k, v := range tc.wantQuery {
				if u.Query().Get(k) != v {
					t.Errorf("query %s = %q, want %q", k, u.Query().Get(k), v)
				}
			}
			exp, _ := expiryOf(g.URL)
			if !g.ExpiresAt.Equal(exp) || time.Until(g.ExpiresAt) <= 0 {
				t.Errorf("ExpiresAt %v, URL says %v", g.ExpiresAt, exp)
			}

			// The verifier can fail: any change to what was signed breaks it.
			for name := range g.Headers {
				h := map[string]string{}
				for k, v := range g.Headers {
					h[k] = v
				}
				h[name] = v4Tamper(h[name])
				if _, err := v4Verify(v4Request{Method: tc.method, URL: u, Header: grantHeaders(u, h)}, &key.PublicKey, time.Now()); !errors.Is(err, errSignature) {
					t.Errorf("changed %s still verifies (err %v)", name, err)
				}
			}
			other := *u
			other.Path = strings.Replace(u.Path, "/my-bucket/", "/my-bucket/x", 1)
			other.RawPath = ""
			if _, err := v4Verify(v4Request{Method: tc.method, URL: &other, Header: grantHeaders(u, g.Headers)}, &key.PublicKey, time.Now()); !errors.Is(err, errSignature) {
				t.Errorf("other object still verifies (err %v)", err)
			}
			if _, err := v4Verify(v4Request{Method: "DELETE", URL: u, Header: grantHeaders(u, g.Headers)}, &key.PublicKey, time.Now()); !errors.Is(err, errSignature) {
				t.Errorf("other method still verifies (err %v)", err)
			}
			if _, err := v4Verify(v4Request{Method: tc.method, URL: u, Header: grantHeaders(u, g.Headers)}, &key.PublicKey, g.ExpiresAt.Add(time.Second)); !errors.Is(err, errExpired) {
				t.Errorf("after expiry: err %v, want errExpired", err)
			}
		})
	}
}

func v4Tamper(v string) string {
	if v == "" {
		return "x"
	}
	return v + "1"
}

func TestPresignPutHeaders(t *testing.T) {
	_, path, _ := testKey(t)
	d, err := Open(context.Background(), drivers.Settings{"bucket": "b", "credentials_file": path}, drivers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	tests := []struct {
		name      string
		c         drivers.Constraints
		want      map[string]string
		overwrite drivers.Enforcement
		wantErr   error
	}{
		{"no overwrite", drivers.Constraints{ContentType: "image/png", Size: 10, NoOverwrite: true, Expires: time.Minute, Metadata: map[string]string{"album": "x"}},
			map[string]string{"Content-Type": "image/png", "x-goog-content-length-range": "10,10", "x-goog-if-generation-match": "0", "x-goog-meta-album": "x"}, drivers.BySignature, nil},
		{"overwrite allowed", drivers.Constraints{ContentType: "image/png", Size: 10, Expires: time.Minute},
			map[string]string{"Content-Type": "image/png", "x-goog-content-length-range": "10,10"}, drivers.NotEnforced, nil},
		{"too large", drivers.Constraints{Size: MaxSinglePut + 1, Expires: time.Minute}, nil, "", drivers.ErrInvalid},
		{"no expiry", drivers.Constraints{Size: 1}, nil, "", drivers.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := d.PresignPut(context.Background(), "k.png", tc.c)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Headers) != len(tc.want) {
				t.Errorf("headers %v, want %v", g.Headers, tc.want)
			}
			for k, v := range tc.want {
				if g.Headers[k] != v {
					t.Errorf("header %s = %q, want %q", k, g.Headers[k], v)
				}
			}
			if g.Enforced.NoOverwrite != tc.overwrite || g.Enforced.Size != drivers.BySignature {
				t.Errorf("enforced %+v", g.Enforced)
			}
		})
	}

	// Expiry beyond V4's week is clamped, and ExpiresAt says so.
	g, err := d.PresignGet(context.Background(), "k", drivers.GetOptions{Expires: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(g.ExpiresAt) > maxExpiry {
		t.Errorf("ExpiresAt %v is beyond a week", g.ExpiresAt)
	}
}

func TestOpenSettings(t *testing.T) {
	_, path, email := testKey(t)
	dir := t.TempDir()
	userCreds := filepath.Join(dir, "user.json")
	_ = os.WriteFile(userCreds, []byte(`{"type":"authorized_user","client_id":"x","client_secret":"y","refresh_token":"z"}`), 0o600)
	t.Setenv("STORAGE_EMULATOR_HOST", "")

	tests := []struct {
		name    string
		s       drivers.Settings
		env     string
		wantErr string
	}{
		{"key file", drivers.Settings{"bucket": "b", "credentials_file": path}, "", ""},
		{"key file and matching access_id", drivers.Settings{"bucket": "b", "credentials_file": path, "access_id": email}, "", ""},
		{"emulator without credentials", drivers.Settings{"bucket": "b", "endpoint": "http://127.0.0.1:4443"}, "", ""},
		{"emulator from env", drivers.Settings{"bucket": "b"}, "127.0.0.1:4443", ""},
		{"neither", drivers.Settings{"bucket": "b"}, "", "set credentials_file (a service-account JSON key) or access_id"},
		{"missing bucket", drivers.Settings{"credentials_file": path}, "", "bucket"},
		{"unreadable file", drivers.Settings{"bucket": "b", "credentials_file": filepath.Join(dir, "nope.json")}, "", "credentials_file"},
		{"user credentials cannot sign", drivers.Settings{"bucket": "b", "credentials_file": userCreds}, "", "or set access_id"},
		{"access_id differs", drivers.Settings{"bucket": "b", "credentials_file": path, "access_id": "other@x.iam.gserviceaccount.com"}, "", "access_id"},
		{"bad endpoint", drivers.Settings{"bucket": "b", "endpoint": "ftp://x"}, "", "endpoint"},
		{"iam with emulator", drivers.Settings{"bucket": "b", "endpoint": "http://127.0.0.1:1", "access_id": email}, "", "access_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("STORAGE_EMULATOR_HOST", tc.env)
			d, err := drivers.Open(context.Background(), Name, tc.s, drivers.Env{})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				_ = d.Close()
				return
			}
			if !errors.Is(err, drivers.ErrConfig) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want ErrConfig containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Fatalf("error text carries key material: %v", err)
			}
		})
	}
}

func BenchmarkPresignPut(b *testing.B) {
	_, path, _ := testKey(b)
	d, err := Open(context.Background(), drivers.Settings{"bucket": "b", "credentials_file": path}, drivers.Env{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
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
