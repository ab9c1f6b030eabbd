package broker

import (
	"strings"
	"testing"

	"github.com/upbroker/upbroker/drivers"
)

// TestPlanParts holds the multipart plan to the store's limits: the
// profile's part size, raised to the store's minimum, grown (to a whole
// MiB) until the upload fits in the store's part count, and refused when
// even the largest part cannot make it fit.
func TestPlanParts(t *testing.T) {
	const mib, gib, tib = int64(1) << 20, int64(1) << 30, int64(1) << 40
	s3 := drivers.Capabilities{Multipart: true, MinPartSize: 5 * mib, MaxPartSize: 5 * gib, MaxParts: 10000}
	cases := []struct {
		name      string
		size      int64
		want      int64 // the profile's part_size
		caps      drivers.Capabilities
		partSize  int64
		partCount int
		err       string
	}{
		{"profile part size", 100 * mib, 16 * mib, s3, 16 * mib, 7, ""},
		{"last part short", 20 * mib, 8 * mib, s3, 8 * mib, 3, ""},
		{"exact multiple", 32 * mib, 16 * mib, s3, 16 * mib, 2, ""},
		{"raised to the store's minimum", 20 * mib, 1 * mib, s3, 5 * mib, 4, ""},
		{"no part size anywhere", 100 * mib, 0, drivers.Capabilities{Multipart: true}, 16 * mib, 7, ""},
		{"exactly 10,000 parts", 10000 * 16 * mib, 16 * mib, s3, 16 * mib, 10000, ""},
		{"one byte over 10,000 parts", 10000*16*mib + 1, 16 * mib, s3, 17 * mib, 9412, ""},
		{"5 TiB", 5 * tib, 16 * mib, s3, 525 * mib, 9987, ""},
		{"default of 10,000 parts", 10000*16*mib + 1, 16 * mib, drivers.Capabilities{Multipart: true}, 17 * mib, 9412, ""},
		{"store's own part count", 100 * mib, 5 * mib, drivers.Capabilities{Multipart: true, MaxParts: 10}, 10 * mib, 10, ""},
		{"beyond the largest part", 60 * tib, 16 * mib, s3, 0, 0, "larger than the backend's"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps, n, err := planParts(tc.size, tc.want, tc.caps)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("planParts = %d, %d, %v; want an error containing %q", ps, n, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("planParts: %v", err)
			}
			if ps != tc.partSize || n != tc.partCount {
				t.Fatalf("planParts = %d MiB × %d, want %d MiB × %d", ps/mib, n, tc.partSize/mib, tc.partCount)
			}
			// The invariants behind the numbers: the parts cover the upload,
			// the last one is not empty, and the store's limits hold.
			maxParts := tc.caps.MaxParts
			if maxParts == 0 {
				maxParts = 10000
			}
			if ps*int64(n) < tc.size || ps*int64(n-1) >= tc.size || n > maxParts || ps < tc.caps.MinPartSize {
				t.Fatalf("plan %d × %d breaks an invariant for size %d and %+v", ps, n, tc.size, tc.caps)
			}
		})
	}
}
