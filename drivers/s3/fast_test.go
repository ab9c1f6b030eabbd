package s3

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/s3compat"
	"github.com/upbroker/upbroker/drivers/s3compat/s3compattest"
)

// TestFastPresignMatchesSDK signs every grant twice at the same instant,
// with the fast path and with the SDK's presigner, and requires the same
// URL, byte for byte, over a table of addresses, credentials, keys and
// headers.
func TestFastPresignMatchesSDK(t *testing.T) {
	s3compattest.RunFastEquivalence(t, func(t *testing.T, s drivers.Settings, token string) s3compattest.FastDriver {
		set, err := s3compat.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg := aws.Config{Region: set.Region, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", SessionToken: token}, nil
		})}
		d := newDriver(set, cfg, nil)
		if d.fast == nil {
			t.Fatalf("settings %v: no fast path", s)
		}
		fast, sdk := d.fast, d.presign
		broken := s3.NewPresignClient(d.client, func(o *s3.PresignOptions) {
			o.ClientOptions = append(o.ClientOptions, func(o *s3.Options) {
				o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{}, errors.New("the SDK presigner was called")
				})
			})
		})
		return s3compattest.FastDriver{
			Driver: d,
			SetFast: func(on bool) {
				d.fast, d.presign = nil, sdk
				if on {
					d.fast, d.presign = fast, broken
				}
			},
			SetNow: func(now time.Time) { d.now = func() time.Time { return now } },
		}
	}, s3compattest.FastOptions{
		Configs: []s3compattest.FastConfig{
			{Name: "path-style endpoint", Settings: drivers.Settings{"endpoint": "http://127.0.0.1:9000", "path_style": "true"}, Host: "127.0.0.1:9000", Path: "/uploads/"},
			{Name: "virtual-host endpoint", Settings: drivers.Settings{"endpoint": "http://minio.internal:9000"}, Host: "uploads.minio.internal:9000", Path: "/"},
			{Name: "AWS regional", Settings: drivers.Settings{"region": "eu-west-1"}, Host: "uploads.s3.eu-west-1.amazonaws.com", Path: "/"},
			{Name: "AWS path-style", Settings: drivers.Settings{"region": "eu-west-1", "path_style": "true"}, Host: "s3.eu-west-1.amazonaws.com", Path: "/uploads/"},
			{Name: "public endpoint", Settings: drivers.Settings{"endpoint": "http://127.0.0.1:9000", "public_endpoint": "https://files.example.com", "path_style": "true"}, Host: "files.example.com", Path: "/uploads/"},
			{Name: "public endpoint, default port", Settings: drivers.Settings{"endpoint": "http://127.0.0.1:9000", "public_endpoint": "https://files.example.com:443"}, Host: "uploads.files.example.com", Path: "/"},
			{Name: "dotted bucket", Settings: drivers.Settings{"bucket": "my.uploads", "endpoint": "http://127.0.0.1:9000", "path_style": "true"}, Host: "127.0.0.1:9000", Path: "/my.uploads/"},
		},
		// The SDK leaves Content-Type out of an empty PUT's signature;
		// the fast path signs it (see PresignPut).
		SkipEmptyPut: true,
	})
}

// TestFastPresignEmptyPutSignsType: the one place the fast path differs
// from the SDK, on purpose.
func TestFastPresignEmptyPutSignsType(t *testing.T) {
	set, err := s3compat.Parse(drivers.Settings{"bucket": "uploads", "endpoint": "http://127.0.0.1:9000", "path_style": "true", "access_key": "a", "secret_key": "s"})
	if err != nil {
		t.Fatal(err)
	}
	d := newDriver(set, aws.Config{Region: set.Region, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "a", SecretAccessKey: "s"}, nil
	})}, nil)
	g, err := d.PresignPut(context.Background(), "k", drivers.Constraints{ContentType: "text/plain", Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Query().Get("X-Amz-SignedHeaders"); got != "content-type;host" {
		t.Fatalf("signed headers %q, want content-type;host", got)
	}
	if g.Enforced.Size != drivers.AfterUpload || g.Enforced.ContentType != drivers.BySignature {
		t.Fatalf("enforced %+v", g.Enforced)
	}
}

// TestOpenEngagesFastPath: the drivers that Open builds, the ones every
// real-MinIO test uses, sign with the fast path.
func TestOpenEngagesFastPath(t *testing.T) {
	cases := []struct {
		s    drivers.Settings
		fast bool
	}{
		{drivers.Settings{"bucket": "uploads", "endpoint": "http://127.0.0.1:9000", "path_style": "true", "access_key": "a", "secret_key": "s"}, true},
		{drivers.Settings{"bucket": "uploads", "region": "eu-west-1", "access_key": "a", "secret_key": "s", "session_token": "t"}, true},
		{drivers.Settings{"bucket": "uploads", "region": "eu-west-1"}, true}, // the default credential chain
		{drivers.Settings{"bucket": "b--use1-az4--x-s3", "region": "us-east-1", "access_key": "a", "secret_key": "s"}, false},
	}
	for _, tc := range cases {
		d, err := Open(context.Background(), tc.s, drivers.Env{Backend: "b"})
		if err != nil {
			t.Fatal(err)
		}
		if got := d.(*Driver).fast != nil; got != tc.fast {
			t.Errorf("%v: fast path %v, want %v", tc.s, got, tc.fast)
		}
		if got := d.(*Driver).stat != nil; got != tc.fast {
			t.Errorf("%v: fast stat %v, want %v", tc.s, got, tc.fast)
		}
	}
}
