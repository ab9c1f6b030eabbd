package s3

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/drivertest"
	"github.com/upbroker/upbroker/drivers/s3compat/s3compattest"
)

// openS3 opens the s3 driver against MinIO, which needs path-style URLs
// (virtual hosts like uploads.127.0.0.1 do not resolve).
func openS3(t testing.TB, s drivers.Settings) drivers.Driver {
	t.Helper()
	s = maps.Clone(s)
	s["path_style"] = "true"
	d, err := drivers.Open(context.Background(), "s3", s, drivers.Env{Backend: "s3-test"})
	if err != nil {
		t.Fatalf("open s3: %v", err)
	}
	return d
}

func TestAgainstMinIO(t *testing.T) { s3compattest.Run(t, openS3) }

func BenchmarkPresignPut(b *testing.B) { s3compattest.BenchPresignPut(b, openS3) }

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{Open: func(t *testing.T) drivers.Driver {
		s := s3compattest.NewStore(t, openS3)
		return s.Driver
	}})
}

func TestSignedHeaders(t *testing.T) { s3compattest.RunSignedHeaders(t, openS3) }

func TestSpec(t *testing.T) {
	spec, ok := drivers.Lookup("s3")
	if !ok {
		t.Fatal("s3 not registered")
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
		{"no bucket", drivers.Settings{"region": "eu-west-1"}, "bucket"},
		{"unknown key", drivers.Settings{"bucket": "uploads", "container": "x"}, "container"},
		{"bad endpoint", drivers.Settings{"bucket": "uploads", "endpoint": "minio:9000"}, "endpoint"},
	}
	for _, tc := range cases {
		_, err := drivers.Open(context.Background(), "s3", tc.s, drivers.Env{Backend: "b"})
		if !errors.Is(err, drivers.ErrConfig) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: Open = %v, want ErrConfig naming %q", tc.name, err, tc.field)
		}
	}
}
