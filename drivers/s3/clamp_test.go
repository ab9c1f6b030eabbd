package s3

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/s3compat"
	"github.com/upbroker/upbroker/drivers/s3compat/s3compattest"
)

func TestExpiryClampedToCredentials(t *testing.T) {
	s3compattest.RunClamp(t, func(t *testing.T, now time.Time, c s3compattest.Creds) drivers.Driver {
		set, err := s3compat.Parse(drivers.Settings{"bucket": "uploads", "endpoint": "http://127.0.0.1:1", "path_style": "true"})
		if err != nil {
			t.Fatal(err)
		}
		provider := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "ASIATEST", SecretAccessKey: "secret", SessionToken: "token",
				CanExpire: c.Temporary, Expires: c.Expires}, nil
		})
		d := newDriver(set, aws.Config{Region: set.Region, Credentials: provider}, nil)
		d.now = func() time.Time { return now }
		return d
	})
}
