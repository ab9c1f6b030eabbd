package s3compattest

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// Creds describe the credentials a clamp case hands the driver.
type Creds struct {
	// Temporary credentials (an STS or SSO session) expire at Expires.
	Temporary bool
	Expires   time.Time
}

// ClampOpener builds the driver under test on credentials like c, with a
// clock that reads now. No server is needed.
type ClampOpener func(t *testing.T, now time.Time, c Creds) drivers.Driver

// RunClamp checks that grant expiry is clamped to temporary credentials'
// own expiry, that ExpiresAt reports the real expiry, and that the URL
// carries the same lifetime.
func RunClamp(t *testing.T, open ClampOpener) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		creds   Creds
		ask     time.Duration
		want    time.Duration
		wantErr error
	}{
		{"static keys: as asked", Creds{}, 15 * time.Minute, 15 * time.Minute, nil},
		{"session outlives the grant", Creds{true, now.Add(time.Hour)}, 15 * time.Minute, 15 * time.Minute, nil},
		{"session ends first", Creds{true, now.Add(90 * time.Second)}, 15 * time.Minute, 90 * time.Second, nil},
		{"session ends in a fraction", Creds{true, now.Add(90*time.Second + 500*time.Millisecond)}, time.Hour, 90 * time.Second, nil},
		{"session already over", Creds{true, now.Add(-time.Second)}, time.Minute, 0, drivers.ErrUnavailable},
		{"beyond SigV4's 7 days", Creds{}, 30 * 24 * time.Hour, 7 * 24 * time.Hour, nil},
		{"no expiry asked", Creds{}, 0, 0, drivers.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := open(t, now, tc.creds)
			ctx := context.Background()
			grants := map[string]func() (drivers.Grant, error){
				"put": func() (drivers.Grant, error) {
					return d.PresignPut(ctx, "k/a.bin", drivers.Constraints{ContentType: "text/plain", Size: 3, Expires: tc.ask})
				},
				"get": func() (drivers.Grant, error) {
					return d.PresignGet(ctx, "k/a.bin", drivers.GetOptions{Expires: tc.ask})
				},
				"part": func() (drivers.Grant, error) {
					return d.(drivers.Multipart).PresignPart(ctx, "k/a.bin", "upload-1", 1, 5<<20, tc.ask)
				},
				"post": func() (drivers.Grant, error) {
					return d.(drivers.PostPresigner).PresignPost(ctx, "k/a.bin", drivers.Constraints{ContentType: "text/plain", MaxSize: 10, Expires: tc.ask})
				},
			}
			for name, grant := range grants {
				g, err := grant()
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("%s: err = %v, want %v", name, err, tc.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !g.ExpiresAt.Equal(now.Add(tc.want)) {
					t.Fatalf("%s: ExpiresAt = %v, want %v", name, g.ExpiresAt, now.Add(tc.want))
				}
				if name == "post" {
					continue // the policy document carries the expiry
				}
				u, err := url.Parse(g.URL)
				if err != nil {
					t.Fatal(err)
				}
				if got := u.Query().Get("X-Amz-Expires"); got != strconv.Itoa(int(tc.want/time.Second)) {
					t.Fatalf("%s: X-Amz-Expires = %s, want %d", name, got, int(tc.want/time.Second))
				}
			}
		})
	}
}
