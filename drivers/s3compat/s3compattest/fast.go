package s3compattest

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// FastDriver is a driver under the fast-path equivalence test, with the
// switches the test needs.
type FastDriver struct {
	Driver drivers.Driver
	// SetFast(true) signs with the fast path and breaks the SDK's own
	// presigner, so a grant the fast path declined fails the test instead
	// of passing unseen; SetFast(false) signs with the SDK only.
	SetFast func(on bool)
	// SetNow fixes the driver's clock.
	SetNow func(time.Time)
}

// FastOpener opens the driver on s (bucket, region and endpoints) with
// static credentials carrying sessionToken when it is not empty.
type FastOpener func(t *testing.T, s drivers.Settings, sessionToken string) FastDriver

// FastConfig is one way of addressing the bucket, and the host and path
// prefix its URLs must have.
type FastConfig struct {
	Name     string
	Settings drivers.Settings // bucket defaults to "uploads", region to us-east-1
	Host     string
	Path     string
}

// FastOptions tune RunFastEquivalence to a driver.
type FastOptions struct {
	Configs []FastConfig
	// SkipEmptyPut leaves out PUTs of 0 bytes, which the driver signs
	// differently from its SDK on purpose (and tests on its own).
	SkipEmptyPut bool
}

// FastKeys are object keys that exercise SigV4's URI encoding.
var FastKeys = []string{
	"images/u-42/0f3c.png",
	"with space/and  two.txt",
	"ünïcödé/日本語/ファイル.png",
	"plus+sign/a+b=c.bin",
	"tilde~/x~y.~",
	"deep/a/b/c/d/e/f/g/h/i/j/k.bin",
	"a//b/./c/../d",
	"/leading-slash",
	"trailing/",
	"reserved ;,:@&=$!*'()[]#?%25.bin",
	"emoji-😀.gif",
}

// RunFastEquivalence signs each grant with the SDK and then with the fast
// path at the instant the SDK signed (its X-Amz-Date), and requires the
// same URL byte for byte, the same headers and the same enforcement, for
// every configuration, with and without a session token, for every key
// in FastKeys and a spread of constraints, parts and downloads.
func RunFastEquivalence(t *testing.T, open FastOpener, o FastOptions) {
	ctx := context.Background()
	const sum = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="
	puts := []struct {
		name string
		c    drivers.Constraints
	}{
		{"type and length", drivers.Constraints{ContentType: "image/png", Size: 48213}},
		{"everything", drivers.Constraints{ContentType: "video/mp4", Size: 5 << 30, NoOverwrite: true, ChecksumSHA256: sum,
			Metadata: map[string]string{"upbrokerprincipal": "u-42", "upbrokerprofile": "images", "album": "  summer   2024 ", "a-b": "x+y/z=~"}}},
		{"no type", drivers.Constraints{Size: 3}},
		{"empty", drivers.Constraints{ContentType: "text/plain"}},
	}
	type grantFn struct {
		name string
		do   func(d drivers.Driver, key string) (drivers.Grant, error)
	}
	var grants []grantFn
	for _, p := range puts {
		if o.SkipEmptyPut && p.c.Size == 0 {
			continue
		}
		c := p.c
		c.Expires = 15 * time.Minute
		grants = append(grants, grantFn{"put " + p.name, func(d drivers.Driver, key string) (drivers.Grant, error) {
			return d.PresignPut(ctx, key, c)
		}})
	}
	for _, size := range []int64{5 << 20, 0} {
		grants = append(grants, grantFn{"part", func(d drivers.Driver, key string) (drivers.Grant, error) {
			return d.(drivers.Multipart).PresignPart(ctx, key, "2~upload/ID+with=odd chars", 17, size, time.Hour)
		}})
	}
	for _, name := range []string{"", "résumé 2024 (final).pdf"} {
		grants = append(grants, grantFn{"get " + name, func(d drivers.Driver, key string) (drivers.Grant, error) {
			return d.PresignGet(ctx, key, drivers.GetOptions{Expires: 7 * 24 * time.Hour, Filename: name})
		}})
	}

	fixed := time.Date(2026, 3, 1, 23, 59, 59, 0, time.UTC)
	for _, cfg := range o.Configs {
		for _, token := range []string{"", "IQoJb3JpZ2luX2VjE+temporary/session==token"} {
			s := drivers.Settings{"bucket": "uploads", "region": "us-east-1"}
			maps.Copy(s, cfg.Settings)
			name := cfg.Name
			if token != "" {
				name += ", session token"
			}
			t.Run(name, func(t *testing.T) {
				fd := open(t, s, token)
				for _, g := range grants {
					for _, key := range FastKeys {
						fd.SetFast(false)
						fd.SetNow(fixed)
						want, err := g.do(fd.Driver, key)
						if err != nil {
							t.Fatalf("%s %q with the SDK: %v", g.name, key, err)
						}
						wu, err := url.Parse(want.URL)
						if err != nil {
							t.Fatal(err)
						}
						at, err := time.Parse("20060102T150405Z", wu.Query().Get("X-Amz-Date"))
						if err != nil {
							t.Fatalf("SDK URL %s: %v", want.URL, err)
						}
						fd.SetFast(true)
						fd.SetNow(at)
						got, err := g.do(fd.Driver, key)
						if err != nil {
							t.Fatalf("%s %q with the fast path: %v", g.name, key, err)
						}
						if got.URL != want.URL {
							t.Fatalf("%s %q:\nfast %s\nSDK  %s", g.name, key, got.URL, want.URL)
						}
						if !maps.Equal(got.Headers, want.Headers) || got.Enforced != want.Enforced || got.Method != want.Method {
							t.Fatalf("%s %q: fast %s %v %+v, SDK %s %v %+v", g.name, key, got.Method, got.Headers, got.Enforced, want.Method, want.Headers, want.Enforced)
						}
						gu, _ := url.Parse(got.URL)
						if gu.Host != cfg.Host && gu.Hostname() != cfg.Host || len(gu.EscapedPath()) < len(cfg.Path) || gu.EscapedPath()[:len(cfg.Path)] != cfg.Path {
							t.Fatalf("%s: URL %s, want host %s and path under %s", cfg.Name, got.URL, cfg.Host, cfg.Path)
						}
						if (token != "") != gu.Query().Has("X-Amz-Security-Token") || token != "" && gu.Query().Get("X-Amz-Security-Token") != token {
							t.Fatalf("session token %q, URL %s", token, got.URL)
						}
					}
				}
			})
		}
	}
}

// testKeyEncoding uploads and downloads, through the grants' URLs, an
// object under each key of FastKeys that a store accepts as an object
// name: the store recomputes the signature over its own reading of the
// escaped path, so a key escaped differently from SigV4 fails here.
func testKeyEncoding(t *testing.T, s *Store) {
	ctx := context.Background()
	for _, key := range FastKeys {
		// MinIO refuses names with empty, "." or ".." segments, and a
		// trailing slash names a folder.
		if strings.Contains(key, "//") || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
			continue
		}
		t.Run(key, func(t *testing.T) {
			body := []byte("key encoding: " + key)
			key := "enc/" + key
			g, err := s.Driver.PresignPut(ctx, key, drivers.Constraints{
				ContentType: "text/plain; charset=utf-8", Size: int64(len(body)), NoOverwrite: true,
				ChecksumSHA256: Sum(body), Expires: time.Minute,
				Metadata: map[string]string{"album": "  spaced   out  "},
			})
			if err != nil {
				t.Fatal(err)
			}
			if st, resp := Do(t, g, body, nil); st != http.StatusOK {
				t.Fatalf("PUT %s: %d %s", g.URL, st, resp)
			}
			info, err := s.Driver.Stat(ctx, key)
			if err != nil || info.Size != int64(len(body)) {
				t.Fatalf("Stat = %+v, %v", info, err)
			}
			gg, err := s.Driver.PresignGet(ctx, key, drivers.GetOptions{Expires: time.Minute, Filename: "ünï code.txt"})
			if err != nil {
				t.Fatal(err)
			}
			st, got := Do(t, gg, nil, nil)
			if st != http.StatusOK || got != string(body) {
				t.Fatalf("GET %s: %d %q", gg.URL, st, got)
			}
		})
	}
}
