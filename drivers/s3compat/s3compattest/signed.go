package s3compattest

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// RunSignedHeaders checks, without a server, that a PUT grant's Headers
// are exactly the headers its signature covers, besides host and
// Content-Length: the client learns everything it must send, and nothing
// it sends is left unsigned.
func RunSignedHeaders(t *testing.T, open Opener) {
	d := open(t, drivers.Settings{
		"bucket": "uploads", "endpoint": "http://127.0.0.1:1", "region": "us-east-1",
		"access_key": "AKIDEXAMPLE", "secret_key": "secret-example-key",
	})
	cases := []struct {
		name string
		c    drivers.Constraints
	}{
		{"type and length", drivers.Constraints{ContentType: "image/png", Size: 10}},
		{"no overwrite", drivers.Constraints{ContentType: "image/png", Size: 10, NoOverwrite: true}},
		{"checksum", drivers.Constraints{ContentType: "image/png", Size: 10, ChecksumSHA256: Sum([]byte("0123456789"))}},
		{"metadata", drivers.Constraints{ContentType: "image/png", Size: 10, Metadata: map[string]string{"upbrokerprincipal": "u-1", "album": "x y"}}},
		{"everything", drivers.Constraints{ContentType: "video/mp4", Size: 5 << 30, NoOverwrite: true, ChecksumSHA256: Sum(nil), Metadata: map[string]string{"a": "1"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Expires = time.Minute
			g, err := d.PresignPut(context.Background(), "k/obj.bin", tc.c)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(g.URL)
			if err != nil {
				t.Fatal(err)
			}
			signed := strings.Split(u.Query().Get("X-Amz-SignedHeaders"), ";")
			want := []string{"host", "content-length"}
			for k := range g.Headers {
				want = append(want, strings.ToLower(k))
			}
			slices.Sort(signed)
			slices.Sort(want)
			if !slices.Equal(signed, want) {
				t.Fatalf("signed headers %v, want %v (grant headers %v)", signed, want, g.Headers)
			}
			for k := range tc.c.Metadata {
				if u.Query().Has("x-amz-meta-" + k) {
					t.Fatalf("metadata %q was hoisted into the URL instead of signed as a header", k)
				}
			}
		})
	}
}
