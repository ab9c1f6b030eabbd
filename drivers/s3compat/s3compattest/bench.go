package s3compattest

import (
	"context"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// BenchPresignPut measures one PUT grant with type, length, If-None-Match,
// a checksum and two metadata headers. No server is needed: presigning
// makes no network call, so the endpoint is a closed port.
func BenchPresignPut(b *testing.B, open Opener) {
	d := open(b, drivers.Settings{
		"bucket":     "uploads",
		"endpoint":   "http://127.0.0.1:1",
		"access_key": "AKIAIOSFODNN7EXAMPLE",
		"secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"region":     "us-east-1",
	})
	c := drivers.Constraints{
		ContentType:    "image/png",
		Size:           48213,
		ChecksumSHA256: "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
		Metadata:       map[string]string{"upbrokerprincipal": "u-42", "upbrokerprofile": "images"},
		NoOverwrite:    true,
		Expires:        5 * time.Minute,
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.PresignPut(ctx, "images/u-42/0f3c.png", c); err != nil {
			b.Fatal(err)
		}
	}
}
