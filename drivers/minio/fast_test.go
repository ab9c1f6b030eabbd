package minio

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/s3compat"
	"github.com/upbroker/upbroker/drivers/s3compat/s3compattest"
)

// failingProvider makes minio-go's presigner fail, so that a grant the
// fast path declined cannot pass unseen.
type failingProvider struct{}

var errSDKCalled = errors.New("minio-go's presigner was called")

func (failingProvider) Retrieve() (credentials.Value, error) {
	return credentials.Value{}, errSDKCalled
}
func (failingProvider) RetrieveWithCredContext(*credentials.CredContext) (credentials.Value, error) {
	return credentials.Value{}, errSDKCalled
}
func (failingProvider) IsExpired() bool { return true }

// TestFastPresignMatchesSDK: minio-go signs at time.Now(), so the fast
// path signs at the instant minio-go's URL names, and the two URLs must
// be byte-identical.
func TestFastPresignMatchesSDK(t *testing.T) {
	s3compattest.RunFastEquivalence(t, func(t *testing.T, s drivers.Settings, token string) s3compattest.FastDriver {
		set, err := s3compat.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		d, err := newDriver(set, credentials.NewStaticV4("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token), nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.fast == nil {
			t.Fatalf("settings %v: no fast path", s)
		}
		broken, err := newClient(set.SigningEndpoint(), set, credentials.New(failingProvider{}))
		if err != nil {
			t.Fatal(err)
		}
		fast, sdk := d.fast, d.signer
		return s3compattest.FastDriver{
			Driver: d,
			SetFast: func(on bool) {
				d.fast, d.signer = nil, sdk
				if on {
					d.fast, d.signer = fast, broken
				}
			},
			SetNow: func(now time.Time) { d.now = func() time.Time { return now } },
		}
	}, s3compattest.FastOptions{
		Configs: []s3compattest.FastConfig{
			{Name: "MinIO endpoint", Settings: drivers.Settings{"endpoint": "http://127.0.0.1:9000"}, Host: "127.0.0.1:9000", Path: "/uploads/"},
			{Name: "public endpoint", Settings: drivers.Settings{"endpoint": "http://127.0.0.1:9000", "public_endpoint": "https://files.example.com"}, Host: "files.example.com", Path: "/uploads/"},
			{Name: "public endpoint, default port", Settings: drivers.Settings{"endpoint": "http://127.0.0.1:9000", "public_endpoint": "http://files.example.com:80"}, Host: "files.example.com", Path: "/uploads/"},
			{Name: "AWS endpoint, virtual host", Settings: drivers.Settings{"endpoint": "https://s3.amazonaws.com", "region": "eu-west-1"}, Host: "uploads.s3.dualstack.eu-west-1.amazonaws.com", Path: "/"}, // minio-go defaults to dual-stack
			{Name: "AWS endpoint, dotted bucket", Settings: drivers.Settings{"bucket": "my.uploads", "endpoint": "https://s3.amazonaws.com", "region": "eu-west-1"}, Host: "s3.dualstack.eu-west-1.amazonaws.com", Path: "/my.uploads/"},
			{Name: "IPv6 endpoint", Settings: drivers.Settings{"endpoint": "http://[::1]:9000"}, Host: "[::1]:9000", Path: "/uploads/"},
		},
	})
}

// TestOpenEngagesFastPath: the drivers that Open builds, the ones every
// real-MinIO test uses, sign with the fast path.
func TestOpenEngagesFastPath(t *testing.T) {
	cases := []drivers.Settings{
		{"bucket": "uploads", "endpoint": "http://127.0.0.1:9000", "access_key": "a", "secret_key": "s"},
		{"bucket": "uploads", "endpoint": "http://127.0.0.1:9000", "public_endpoint": "https://files.example.com", "access_key": "a", "secret_key": "s"},
		{"bucket": "uploads", "endpoint": "http://127.0.0.1:9000"}, // credentials from the environment
	}
	for _, s := range cases {
		d, err := Open(context.Background(), s, drivers.Env{Backend: "b"})
		if err != nil {
			t.Fatal(err)
		}
		if d.(*Driver).fast == nil || d.(*Driver).stat == nil {
			t.Errorf("%v: Open left the fast path off (grants %v, stat %v)", s, d.(*Driver).fast != nil, d.(*Driver).stat != nil)
		}
	}
	// S3 Express directory buckets sign with session keys: not ours.
	d, err := Open(context.Background(), drivers.Settings{"bucket": "b--use1-az4--x-s3", "endpoint": "http://127.0.0.1:9000", "access_key": "a", "secret_key": "s"}, drivers.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if d.(*Driver).fast != nil || d.(*Driver).stat != nil {
		t.Error("fast path on for an S3 Express bucket")
	}
}
