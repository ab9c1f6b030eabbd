// Package s3compattest holds the tests that the s3 and minio drivers share
// beyond the conformance suite: proofs, against a real MinIO, that the
// store's own signature check refuses what a grant does not allow, that
// presigning needs no network, and that a store that is down surfaces as
// drivers.ErrUnavailable. Each driver's test calls Run with its opener.
package s3compattest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/internal/testenv"
)

// Opener opens the driver under test with these settings (bucket,
// endpoint, public_endpoint, access_key, secret_key, region); it adds what
// its driver needs (the s3 driver sets path_style).
type Opener func(t testing.TB, s drivers.Settings) drivers.Driver

// Settings points a driver at a test server's bucket.
func Settings(m *testenv.MinIO, bucket string) drivers.Settings {
	return drivers.Settings{
		"bucket":     bucket,
		"endpoint":   m.Endpoint,
		"access_key": m.AccessKey,
		"secret_key": m.SecretKey,
		"region":     "us-east-1",
	}
}

// Store is a running MinIO with one bucket, opened with the driver.
type Store struct {
	MinIO  *testenv.MinIO
	Bucket string
	Driver drivers.Driver
}

// NewStore starts a MinIO, creates a bucket and opens the driver on it.
func NewStore(t testing.TB, open Opener) *Store {
	t.Helper()
	m := testenv.StartMinIO(t)
	b := m.Bucket(t, "uploads")
	d := open(t, Settings(m, b))
	t.Cleanup(func() { _ = d.Close() })
	return &Store{MinIO: m, Bucket: b, Driver: d}
}

// Run runs every shared test against a fresh MinIO.
func Run(t *testing.T, open Opener) {
	s := NewStore(t, open)
	t.Run("PutEnforcedByStore", func(t *testing.T) { testPut(t, s) })
	t.Run("PostPolicy", func(t *testing.T) { testPost(t, s) })
	t.Run("Multipart", func(t *testing.T) { testMultipart(t, s) })
	t.Run("PublicEndpoint", func(t *testing.T) { testPublicEndpoint(t, s, open) })
	t.Run("StoreDown", func(t *testing.T) { testStoreDown(t, open) })
	t.Run("CORS", func(t *testing.T) { testCORS(t, s) })
	t.Run("Metadata", func(t *testing.T) { testMetadata(t, s) })
	t.Run("KeyEncoding", func(t *testing.T) { testKeyEncoding(t, s) })
}

// Key returns a fresh key under prefix so subtests never collide.
func Key(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%x.bin", prefix, b)
}

// Sum is the base64 SHA-256 of b, as x-amz-checksum-sha256 wants it.
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// Do sends one request to a grant: body, with the grant's headers, then
// edit's changes. It returns the status and the response body.
func Do(t testing.TB, g drivers.Grant, body []byte, edit func(*http.Request)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(g.Method, g.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	for k, v := range g.Headers {
		req.Header.Set(k, v)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", g.Method, g.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type putCase struct {
	name  string
	c     func(body []byte) drivers.Constraints
	body  []byte // what the client sends; nil means the granted bytes
	edit  func(*http.Request)
	twice bool // upload once correctly first, then again
	want  int
	code  string // S3 error code expected in the body, when one is
}

func testPut(t *testing.T, s *Store) {
	ctx := context.Background()
	granted := []byte("hello, upbroker: exactly these bytes")
	base := func(body []byte) drivers.Constraints {
		return drivers.Constraints{
			ContentType: "text/plain",
			Size:        int64(len(body)),
			NoOverwrite: true,
			Expires:     time.Minute,
			Metadata:    map[string]string{"album": "summer"},
		}
	}
	withSum := func(body []byte) drivers.Constraints {
		c := base(body)
		c.ChecksumSHA256 = Sum(body)
		return c
	}
	cases := []putCase{
		{name: "granted upload", c: base, want: http.StatusOK},
		{name: "granted upload with checksum", c: withSum, want: http.StatusOK},
		{name: "wrong content type", c: base, edit: func(r *http.Request) { r.Header.Set("Content-Type", "image/png") }, want: http.StatusForbidden, code: "SignatureDoesNotMatch"},
		{name: "longer body", c: base, body: append(append([]byte{}, granted...), '!'), want: http.StatusForbidden, code: "SignatureDoesNotMatch"},
		{name: "shorter body", c: base, body: granted[1:], want: http.StatusForbidden, code: "SignatureDoesNotMatch"},
		{name: "missing length (chunked)", c: base, edit: func(r *http.Request) { r.ContentLength = -1; r.Body = io.NopCloser(r.Body) }, want: http.StatusLengthRequired, code: "MissingContentLength"},
		{name: "overwrite", c: base, twice: true, want: http.StatusPreconditionFailed, code: "PreconditionFailed"},
		// MinIO answers a signed header that is absent with 400 AccessDenied.
		{name: "missing metadata header", c: base, edit: func(r *http.Request) { r.Header.Del("x-amz-meta-album") }, want: http.StatusBadRequest, code: "AccessDenied"},
		{name: "changed metadata value", c: base, edit: func(r *http.Request) { r.Header.Set("x-amz-meta-album", "winter") }, want: http.StatusForbidden, code: "SignatureDoesNotMatch"},
		{name: "checksum mismatch", c: withSum, body: bytes.ToUpper(granted), want: http.StatusBadRequest, code: "XAmzContentChecksumMismatch"},
		{name: "tampered signature", c: base, edit: func(r *http.Request) { tamper(r.URL) }, want: http.StatusForbidden, code: "SignatureDoesNotMatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := Key("put")
			c := tc.c(granted)
			g, err := s.Driver.PresignPut(ctx, key, c)
			if err != nil {
				t.Fatalf("PresignPut: %v", err)
			}
			if _, ok := g.Headers["Content-Length"]; ok {
				t.Fatalf("grant lists Content-Length in headers: %v", g.Headers)
			}
			if tc.twice {
				if st, body := Do(t, g, granted, nil); st != http.StatusOK {
					t.Fatalf("first upload: %d %s", st, body)
				}
			}
			body := tc.body
			if body == nil {
				body = granted
			}
			st, resp := Do(t, g, body, tc.edit)
			if st != tc.want {
				t.Fatalf("status %d, want %d: %s", st, tc.want, resp)
			}
			if tc.code != "" && !strings.Contains(resp, "<Code>"+tc.code+"</Code>") {
				t.Fatalf("want S3 error %s, got %s", tc.code, resp)
			}
			info, err := s.Driver.Stat(ctx, key)
			switch {
			case tc.want == http.StatusOK || tc.twice:
				if err != nil {
					t.Fatalf("Stat after upload: %v", err)
				}
				if info.Size != int64(len(granted)) || info.ContentType != c.ContentType {
					t.Fatalf("Stat = %d %q, want %d %q", info.Size, info.ContentType, len(granted), c.ContentType)
				}
				got, err := s.Driver.ReadRange(ctx, key, 0, 1<<20)
				if err != nil || !bytes.Equal(got, granted) {
					t.Fatalf("stored %q (%v), want the granted bytes", got, err)
				}
			default:
				if !errors.Is(err, drivers.ErrNotFound) {
					t.Fatalf("a refused upload left an object: Stat = %+v, %v", info, err)
				}
			}
			all := drivers.Enforced{Size: drivers.BySignature, ContentType: drivers.BySignature, Checksum: drivers.BySignature, NoOverwrite: drivers.BySignature}
			if g.Enforced != all {
				t.Fatalf("enforced = %+v, want everything by signature", g.Enforced)
			}
		})
	}
}

// tamper flips one hex digit of the signature.
func tamper(u *url.URL) {
	q := u.Query()
	sig := []byte(q.Get("X-Amz-Signature"))
	if sig[0] == '0' {
		sig[0] = '1'
	} else {
		sig[0] = '0'
	}
	q.Set("X-Amz-Signature", string(sig))
	u.RawQuery = q.Encode()
}

// PostForm sends a POST policy upload: the grant's fields, then the file.
func PostForm(t testing.TB, g drivers.Grant, contentType string, file []byte) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range g.Fields {
		if k == "Content-Type" && contentType != "" {
			v = contentType
		}
		if err := w.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	fw, err := w.CreateFormFile("file", "upload.bin")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(file)
	_ = w.Close()
	resp, err := http.Post(g.URL, w.FormDataContentType(), &buf)
	if err != nil {
		t.Fatalf("POST %s: %v", g.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func testPost(t *testing.T, s *Store) {
	ctx := context.Background()
	pp, ok := s.Driver.(drivers.PostPresigner)
	if !ok {
		t.Fatal("driver does not implement PostPresigner")
	}
	const max = 1024
	cases := []struct {
		name string
		size int
		ct   string
		want int
		code string
	}{
		{name: "exactly max size", size: max, want: http.StatusNoContent},
		{name: "empty file", size: 0, want: http.StatusNoContent},
		{name: "one byte over", size: max + 1, want: http.StatusBadRequest, code: "EntityTooLarge"},
		{name: "wrong content type", size: 10, ct: "image/png", want: http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := Key("post")
			g, err := pp.PresignPost(ctx, key, drivers.Constraints{
				ContentType: "text/plain", MaxSize: max, Expires: time.Minute,
				Metadata: map[string]string{"album": "summer"},
			})
			if err != nil {
				t.Fatalf("PresignPost: %v", err)
			}
			if g.Method != http.MethodPost || g.Fields["key"] != key || g.Fields["Content-Type"] != "text/plain" {
				t.Fatalf("grant = %s %+v", g.Method, g.Fields)
			}
			if strings.Contains(g.URL, key) {
				t.Fatalf("POST URL %s should be the bucket's, not the object's", g.URL)
			}
			st, body := PostForm(t, g, tc.ct, bytes.Repeat([]byte{'x'}, tc.size))
			if st != tc.want {
				t.Fatalf("status %d, want %d: %s", st, tc.want, body)
			}
			if tc.code != "" && !strings.Contains(body, tc.code) {
				t.Fatalf("want %s, got %s", tc.code, body)
			}
			info, err := s.Driver.Stat(ctx, key)
			if tc.want == http.StatusNoContent {
				if err != nil || info.Size != int64(tc.size) || info.ContentType != "text/plain" || info.Metadata["album"] != "summer" {
					t.Fatalf("Stat = %+v, %v", info, err)
				}
			} else if !errors.Is(err, drivers.ErrNotFound) {
				t.Fatalf("refused POST left an object: %+v, %v", info, err)
			}
		})
	}
}

func testMetadata(t *testing.T, s *Store) {
	ctx := context.Background()
	key := Key("meta")
	body := []byte("metadata round trip")
	meta := map[string]string{"upbrokerprincipal": "u-42", "upbrokerprofile": "images", "album": "x"}
	g, err := s.Driver.PresignPut(ctx, key, drivers.Constraints{ContentType: "text/plain", Size: int64(len(body)), Metadata: meta, Expires: time.Minute, ChecksumSHA256: Sum(body)})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range meta {
		if g.Headers["x-amz-meta-"+k] != v {
			t.Fatalf("grant headers %v lack x-amz-meta-%s", g.Headers, k)
		}
	}
	if st, resp := Do(t, g, body, nil); st != http.StatusOK {
		t.Fatalf("upload: %d %s", st, resp)
	}
	info, err := s.Driver.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range meta {
		if info.Metadata[k] != v {
			t.Fatalf("Stat metadata = %v, want %v", info.Metadata, meta)
		}
	}
	if info.ChecksumSHA256 != Sum(body) {
		t.Fatalf("Stat checksum = %q, want %q", info.ChecksumSHA256, Sum(body))
	}
	if info.ETag == "" || strings.Contains(info.ETag, `"`) {
		t.Fatalf("ETag %q should be bare", info.ETag)
	}
	// A grant to download offers the file name.
	gg, err := s.Driver.PresignGet(ctx, key, drivers.GetOptions{Expires: time.Minute, Filename: "résumé.txt"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(gg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("GET: %d %q", resp.StatusCode, got)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") || !strings.Contains(cd, "r%C3%A9sum%C3%A9.txt") {
		t.Fatalf("Content-Disposition = %q", cd)
	}
	if err := s.Driver.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := s.Driver.Delete(ctx, key); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if _, err := s.Driver.Stat(ctx, key); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("Stat after Delete = %v, want ErrNotFound", err)
	}
	if b, err := s.Driver.ReadRange(ctx, Key("missing"), 0, 10); !errors.Is(err, drivers.ErrNotFound) {
		t.Fatalf("ReadRange of a missing key = %q, %v", b, err)
	}
}
