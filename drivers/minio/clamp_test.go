package minio

import (
	"testing"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/s3compat"
	"github.com/upbroker/upbroker/drivers/s3compat/s3compattest"
)

// sessionProvider hands out one set of temporary credentials.
type sessionProvider struct{ v credentials.Value }

func (p sessionProvider) Retrieve() (credentials.Value, error) { return p.v, nil }
func (p sessionProvider) RetrieveWithCredContext(*credentials.CredContext) (credentials.Value, error) {
	return p.v, nil
}
func (p sessionProvider) IsExpired() bool { return false }

func TestExpiryClampedToCredentials(t *testing.T) {
	s3compattest.RunClamp(t, func(t *testing.T, now time.Time, c s3compattest.Creds) drivers.Driver {
		set, err := s3compat.Parse(drivers.Settings{"bucket": "uploads", "endpoint": "http://127.0.0.1:1"})
		if err != nil {
			t.Fatal(err)
		}
		v := credentials.Value{AccessKeyID: "ASIATEST", SecretAccessKey: "secret", SessionToken: "token", SignerType: credentials.SignatureV4}
		if c.Temporary {
			v.Expiration = c.Expires
		}
		d, err := newDriver(set, credentials.New(sessionProvider{v}), nil)
		if err != nil {
			t.Fatal(err)
		}
		d.now = func() time.Time { return now }
		return d
	})
}
