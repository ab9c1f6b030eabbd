package minio

import (
	"context"
	"errors"
	"strings"
	"testing"

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
	if !ok || !spec.IsSecret("secret_key") {
		t.Fatal("minio not registered, or secret_key not secret")
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
