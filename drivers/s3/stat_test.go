package s3

import (
	"testing"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/s3compat/s3compattest"
)

func statPaths(d drivers.Driver) s3compattest.StatPaths {
	dd := d.(*Driver)
	return s3compattest.StatPaths{Fast: dd.fastStat, SDK: dd.sdkStat}
}

// TestFastStatMatchesSDK: against a real MinIO, the fast HEAD and
// the AWS SDK describe every kind of object identically.
func TestFastStatMatchesSDK(t *testing.T) { s3compattest.RunStatEquivalence(t, openS3, statPaths) }

// BenchmarkStat: Stat through the AWS SDK (as before the fast path) and
// through Stat, against a real MinIO.
func BenchmarkStat(b *testing.B) { s3compattest.BenchStat(b, openS3, statPaths) }
