package minio

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/drivertest"
	"github.com/upbroker/upbroker/drivers/s3compat/s3compattest"
)

func openMinIO(t testing.TB, s drivers.Settings) drivers.Driver {
	t.Helper()
	d, err := drivers.Open(context.Background(), "minio", s, drivers.Env{Backend: "minio-test"})
	if err != nil {
		t.Fatalf("open minio: %v", err)
	}
	return d
}

func TestAgainstMinIO(t *testing.T) { s3compattest.Run(t, openMinIO) }

func BenchmarkPresignPut(b *testing.B) { s3compattest.BenchPresignPut(b, openMinIO) }

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{Open: func(t *testing.T) drivers.Driver {
		s := s3compattest.NewStore(t, openMinIO)
		return s.Driver
	}})
}

func TestSignedHeaders(t *testing.T) { s3compattest.RunSignedHeaders(t, openMinIO) }

func TestSpec(t *testing.T) {
	spec, ok := drivers.Lookup("minio")
	if !ok {
		t.Fatal("minio not registered")
	}
	for _, k := range []string{"secret_key", "session_token"} {
		if !spec.IsSecret(k) {
			t.Errorf("%s must be secret", k)
		}
	}
	cases := []struct {
		name  string
		s     drivers.Settings
		field string
	}{
		{"no endpoint", drivers.Settings{"bucket": "uploads"}, "endpoint"},
		{"no bucket", drivers.Settings{"endpoint": "http://127.0.0.1:9000"}, "bucket"},
		{"s3-only key", drivers.Settings{"bucket": "uploads", "endpoint": "http://127.0.0.1:9000", "path_style": "true"}, "path_style"},
	}
	for _, tc := range cases {
		_, err := drivers.Open(context.Background(), "minio", tc.s, drivers.Env{Backend: "b"})
		if !errors.Is(err, drivers.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Open = %v, want ErrConfig naming %q", tc.name, err, tc.field)
		}
	}
}

// TestSessionToken: temporary credentials given by hand sign with their
// token, as with the s3 driver, so the store accepts the URL only from that
// session.
func TestSessionToken(t *testing.T) {
	cases := []struct {
		name  string
		token string
	}{
		{"with a token", "FwoGZXIvYXdzEXAMPLETOKEN"},
		{"without", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := drivers.Settings{"bucket": "uploads", "endpoint": "http://127.0.0.1:9000", "access_key": "AKIAEXAMPLE", "secret_key": "secret"}
			if tc.token != "" {
				s["session_token"] = tc.token
			}
			d := openMinIO(t, s)
			defer d.Close()
			g, err := d.PresignPut(context.Background(), "a/b.txt", drivers.Constraints{ContentType: "text/plain", Size: 3, Expires: time.Minute})
			if err != nil {
				t.Fatalf("PresignPut: %v", err)
			}
			u, err := url.Parse(g.URL)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Query().Get("X-Amz-Security-Token"); got != tc.token {
				t.Fatalf("X-Amz-Security-Token = %q, want %q", got, tc.token)
			}
		})
	}
}
