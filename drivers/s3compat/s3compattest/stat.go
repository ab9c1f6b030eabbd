package s3compattest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/drivers/s3compat"
)

// StatPaths are a driver's two ways to describe an object.
type StatPaths struct {
	// Fast is the fast HEAD alone: a *s3compat.Fallback from it fails
	// the test, so a case the fast path silently hands back cannot pass.
	Fast func(ctx context.Context, key string) (drivers.ObjectInfo, error)
	// SDK is Stat as it was before the fast path: the SDK's HEAD.
	SDK func(ctx context.Context, key string) (drivers.ObjectInfo, error)
}

// statCase makes one object (or none) and says what Stat must find.
type statCase struct {
	name string
	// put stores the object and returns its key and what its description
	// must hold besides being the same on both paths.
	put  func(t *testing.T, s *Store) (key string, want drivers.ObjectInfo)
	miss bool // the key does not exist
}

// RunStatEquivalence stats objects of every kind through the fast HEAD
// and through the SDK and requires identical ObjectInfo (and, for a
// missing key, ErrNotFound with the same message but for the SDK's own
// cause). It then checks that Stat hands what the fast path cannot
// answer for certain (a missing bucket, refused credentials) to the SDK,
// whose error it returns.
func RunStatEquivalence(t *testing.T, open Opener, paths func(drivers.Driver) StatPaths) {
	ctx := context.Background()
	s := NewStore(t, open)
	p := paths(s.Driver)

	var cases []statCase
	cases = append(cases,
		statCase{name: "no metadata", put: putSimple("text/plain", nil, false, []byte("plain"))},
		statCase{name: "metadata", put: putSimple("image/png",
			map[string]string{"album": "  spaced   out  ", "upbrokerprincipal": "u-42", "a-b": "x+y/z=~", "upbrokerprofile": "images"}, false, []byte("png?"))},
		statCase{name: "checksum", put: putSimple("application/octet-stream", map[string]string{"k": "v"}, true, []byte("checked bytes"))},
		statCase{name: "empty object", put: putSimple("text/plain", nil, true, []byte{})},
	)
	for _, k := range FastKeys {
		// MinIO refuses names with empty, "." or ".." segments, and a
		// trailing slash names a folder.
		if strings.Contains(k, "//") || strings.HasPrefix(k, "/") || strings.HasSuffix(k, "/") {
			continue
		}
		cases = append(cases, statCase{name: "key " + k, put: func(t *testing.T, s *Store) (string, drivers.ObjectInfo) {
			return putObject(t, s, "stat/"+k, "text/plain; charset=utf-8", map[string]string{"name": "x"}, true, []byte("key: "+k))
		}})
	}
	cases = append(cases,
		statCase{name: "multipart", put: putMultipart},
		statCase{name: "multipart, checksum of checksums", put: putMultipartChecksums},
		statCase{name: "missing key", miss: true},
	)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := Key("stat/missing")
			var want drivers.ObjectInfo
			if !tc.miss {
				key, want = tc.put(t, s)
			}
			fast, ferr := p.Fast(ctx, key)
			var fb *s3compat.Fallback
			if errors.As(ferr, &fb) {
				t.Fatalf("the fast path handed %q back to the SDK: %s", key, fb.Reason)
			}
			sdk, serr := p.SDK(ctx, key)
			if tc.miss {
				if !errors.Is(ferr, drivers.ErrNotFound) || !errors.Is(serr, drivers.ErrNotFound) {
					t.Fatalf("missing key: fast %v, SDK %v; want ErrNotFound from both", ferr, serr)
				}
				// The same message up to the cause, which is each path's own.
				if fp, sp := mappedPart(ferr), mappedPart(serr); fp != sp {
					t.Fatalf("missing key: fast says %q, SDK says %q", fp, sp)
				}
				return
			}
			if ferr != nil || serr != nil {
				t.Fatalf("Stat: fast %v, SDK %v", ferr, serr)
			}
			if !reflect.DeepEqual(fast, sdk) {
				t.Fatalf("fast and SDK differ:\nfast %#v\nSDK  %#v", fast, sdk)
			}
			// Equal and wrong together would pass the line above.
			if fast.Key != key || fast.Size != want.Size || fast.ContentType != want.ContentType ||
				fast.ChecksumSHA256 != want.ChecksumSHA256 || !reflect.DeepEqual(fast.Metadata, want.Metadata) ||
				fast.ETag == "" || time.Since(fast.ModTime) > time.Hour || time.Until(fast.ModTime) > time.Hour {
				t.Fatalf("Stat = %#v\nwant %#v (any ETag, a recent ModTime)", fast, want)
			}
		})
	}

	// Clients reach the store at public_endpoint; the broker's own HEAD
	// must go to endpoint (a public host that does not resolve here
	// would make the fast path hand every Stat back).
	t.Run("public endpoint set", func(t *testing.T) {
		set := Settings(s.MinIO, s.Bucket)
		set["public_endpoint"] = "http://files.invalid:9"
		d := open(t, set)
		t.Cleanup(func() { _ = d.Close() })
		key, want := putObject(t, s, Key("stat/public"), "text/plain", nil, false, []byte("public"))
		got, err := paths(d).Fast(ctx, key)
		if err != nil || got.Size != want.Size {
			t.Fatalf("fast Stat with public_endpoint set = %+v, %v", got, err)
		}
	})

	fallbacks := []struct {
		name string
		edit func(drivers.Settings)
		want error
	}{
		// MinIO names the missing bucket in x-minio-error-code: minio-go
		// maps it to ErrUnavailable, the AWS SDK to ErrNotFound.
		{"missing bucket", func(s drivers.Settings) { s["bucket"] = "no-such-bucket" }, nil},
		{"refused credentials", func(s drivers.Settings) { s["secret_key"] = "not-the-secret" }, drivers.ErrUnavailable},
	}
	for _, tc := range fallbacks {
		t.Run(tc.name, func(t *testing.T) {
			set := Settings(s.MinIO, s.Bucket)
			tc.edit(set)
			d := open(t, set)
			t.Cleanup(func() { _ = d.Close() })
			dp := paths(d)
			key := Key("stat/fallback")
			var fb *s3compat.Fallback
			if _, err := dp.Fast(ctx, key); !errors.As(err, &fb) {
				t.Fatalf("the fast path answered %v; it should hand this case to the SDK", err)
			}
			_, got := d.Stat(ctx, key)
			_, sdk := dp.SDK(ctx, key)
			if got == nil || mappedPart(got) != mappedPart(sdk) {
				t.Fatalf("Stat = %v, the SDK says %v", got, sdk)
			}
			for _, target := range []error{drivers.ErrNotFound, drivers.ErrUnavailable} {
				if errors.Is(got, target) != errors.Is(sdk, target) {
					t.Fatalf("Stat = %v, the SDK says %v", got, sdk)
				}
			}
			if tc.want != nil && !errors.Is(got, tc.want) {
				t.Fatalf("Stat = %v, want %v", got, tc.want)
			}
		})
	}
}

// mappedPart is a mapped error's message without its last cause (the
// SDK's or the fast path's own error text).
func mappedPart(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if u := errors.Unwrap(err); u != nil {
		return msg
	}
	var parts interface{ Unwrap() []error }
	if errors.As(err, &parts) {
		errs := parts.Unwrap()
		return strings.TrimSuffix(msg, errs[len(errs)-1].Error())
	}
	return msg
}

func putSimple(ct string, meta map[string]string, sum bool, body []byte) func(*testing.T, *Store) (string, drivers.ObjectInfo) {
	return func(t *testing.T, s *Store) (string, drivers.ObjectInfo) {
		return putObject(t, s, Key("stat"), ct, meta, sum, body)
	}
}

// putObject uploads body through a PUT grant of the driver.
func putObject(t *testing.T, s *Store, key, ct string, meta map[string]string, sum bool, body []byte) (string, drivers.ObjectInfo) {
	t.Helper()
	c := drivers.Constraints{ContentType: ct, Size: int64(len(body)), Metadata: meta, Expires: time.Minute}
	want := drivers.ObjectInfo{Key: key, Size: int64(len(body)), ContentType: ct, Metadata: map[string]string{}}
	if sum {
		c.ChecksumSHA256 = Sum(body)
		want.ChecksumSHA256 = c.ChecksumSHA256
	}
	for k, v := range meta {
		// S3 trims a header value's ends, as HTTP does.
		want.Metadata[k] = strings.TrimSpace(v)
	}
	g, err := s.Driver.PresignPut(context.Background(), key, c)
	if err != nil {
		t.Fatalf("PresignPut: %v", err)
	}
	if st, resp := Do(t, g, body, nil); st != http.StatusOK {
		t.Fatalf("PUT: %d %s", st, resp)
	}
	return key, want
}

// processCPU is the user and system CPU this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// putMultipart assembles two parts through the driver's own multipart
// grants: an ETag of the "<md5 of md5s>-2" kind, and no checksum.
func putMultipart(t *testing.T, s *Store) (string, drivers.ObjectInfo) {
	ctx := context.Background()
	mp := s.Driver.(drivers.Multipart)
	key := Key("stat/multipart")
	meta := map[string]string{"upbrokerprincipal": "u-7"}
	id, err := mp.CreateMultipart(ctx, key, drivers.Constraints{ContentType: "video/mp4", Metadata: meta})
	if err != nil {
		t.Fatalf("CreateMultipart: %v", err)
	}
	sizes := []int{5 << 20, 1000}
	var parts []drivers.Part
	for i, n := range sizes {
		g, err := mp.PresignPart(ctx, key, id, i+1, int64(n), time.Minute)
		if err != nil {
			t.Fatalf("PresignPart: %v", err)
		}
		body := make([]byte, n)
		_, _ = rand.Read(body)
		req, err := http.NewRequest(g.Method, g.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("part %d: %s", i+1, resp.Status)
		}
		parts = append(parts, drivers.Part{Number: i + 1, ETag: resp.Header.Get("ETag")})
	}
	info, err := mp.CompleteMultipart(ctx, key, id, parts)
	if err != nil {
		t.Fatalf("CompleteMultipart: %v", err)
	}
	if !strings.HasSuffix(info.ETag, "-2") {
		t.Fatalf("multipart ETag %q, want a two-part ETag", info.ETag)
	}
	return key, drivers.ObjectInfo{Size: int64(sizes[0] + sizes[1]), ContentType: "video/mp4", Metadata: meta}
}

// putMultipartChecksums uploads in parts with SHA-256 checksums, through
// minio-go, so the store keeps a checksum of the parts' checksums
// ("...-2"): not the whole object's, so Stat reports none.
func putMultipartChecksums(t *testing.T, s *Store) (string, drivers.ObjectInfo) {
	ctx := context.Background()
	c, err := minio.New(s.MinIO.Addr, &minio.Options{
		Creds:           credentials.NewStaticV4(s.MinIO.AccessKey, s.MinIO.SecretKey, ""),
		Region:          "us-east-1",
		TrailingHeaders: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	key := Key("stat/checksums")
	body := make([]byte, 5<<20+77)
	_, _ = rand.Read(body)
	if _, err := c.PutObject(ctx, s.Bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{
		ContentType:  "application/zip",
		PartSize:     5 << 20,
		Checksum:     minio.ChecksumSHA256,
		UserMetadata: map[string]string{"origin": "sdk"},
	}); err != nil {
		t.Fatalf("multipart PutObject: %v", err)
	}
	raw, err := c.StatObject(ctx, s.Bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(raw.ChecksumSHA256, "-2") {
		t.Fatalf("the store's checksum %q is not a checksum of two parts' checksums", raw.ChecksumSHA256)
	}
	return key, drivers.ObjectInfo{Size: int64(len(body)), ContentType: "application/zip", Metadata: map[string]string{"origin": "sdk"}}
}

// BenchStat measures Stat of one small object with metadata and a
// checksum, through the SDK (as before the fast path) and through Stat.
func BenchStat(b *testing.B, open Opener, paths func(drivers.Driver) StatPaths) {
	s := NewStore(b, open)
	ctx := context.Background()
	key := Key("bench/stat")
	body := []byte("a small object")
	g, err := s.Driver.PresignPut(ctx, key, drivers.Constraints{
		ContentType: "image/png", Size: int64(len(body)), ChecksumSHA256: Sum(body), Expires: time.Minute,
		Metadata: map[string]string{"upbrokerprincipal": "u-42", "upbrokerprofile": "images"},
	})
	if err != nil {
		b.Fatal(err)
	}
	if st, resp := Do(b, g, body, nil); st != http.StatusOK {
		b.Fatalf("PUT: %d %s", st, resp)
	}
	p := paths(s.Driver)
	for _, bc := range []struct {
		name string
		stat func(context.Context, string) (drivers.ObjectInfo, error)
	}{
		{"SDK", p.SDK},
		{"Stat", s.Driver.Stat},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU(b)
			for b.Loop() {
				if _, err := bc.stat(ctx, key); err != nil {
					b.Fatal(err)
				}
			}
			// Wall time is mostly MinIO's (another process); this
			// process's CPU is what the fast path moves.
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
