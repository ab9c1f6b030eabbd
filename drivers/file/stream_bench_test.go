package file

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// pattern is a reader of n bytes that repeats a fixed block, so the client
// side of the benchmark costs a memcpy and nothing else.
type pattern struct {
	block []byte
	n     int64
}

func (p *pattern) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	b = b[:min(int64(len(b)), p.n)]
	k := 0
	for k < len(b) {
		k += copy(b[k:], p.block)
	}
	p.n -= int64(k)
	return k, nil
}

func newBlock() []byte {
	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = byte(i * 7)
	}
	return block
}

// BenchmarkStreamPut measures the signed-PUT path the way `make bench`
// does: a large body with Content-Length over a real TCP connection to
// 127.0.0.1, into fileblob. Run it with a short -benchtime (each op moves
// size bytes through the disk's page cache).
func BenchmarkStreamPut(b *testing.B) {
	const size = 256 << 20
	block := newBlock()
	for _, tc := range []struct {
		name     string
		checksum bool
		chunked  bool
	}{
		{"length", false, false},
		{"chunked", false, true},
		{"sha256", true, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ts := newTestServer(b)
			c := drivers.Constraints{ContentType: "application/octet-stream", Size: size, Expires: time.Hour}
			if tc.checksum {
				h := sha256.New()
				if _, err := io.Copy(h, &pattern{block: block, n: size}); err != nil {
					b.Fatal(err)
				}
				c.ChecksumSHA256 = base64.StdEncoding.EncodeToString(h.Sum(nil))
			}
			ctx := context.Background()
			b.SetBytes(size)
			i := 0
			for b.Loop() {
				key := fmt.Sprintf("bench/%d.bin", i)
				i++
				g, err := ts.d.PresignPut(ctx, key, c)
				if err != nil {
					b.Fatal(err)
				}
				var body io.Reader = &pattern{block: block, n: size}
				if tc.chunked {
					body = chunked{body}
				}
				hr, _ := http.NewRequest(http.MethodPut, g.URL, body)
				for k, v := range g.Headers {
					hr.Header.Set(k, v)
				}
				if !tc.chunked {
					hr.ContentLength = size
				}
				resp, err := http.DefaultClient.Do(hr)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
				b.StopTimer()
				if err := ts.d.bucket.Delete(ctx, key); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
