package s3compat

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// TestStatClientAnswers: which answers of a store the fast Stat takes as
// final and which it hands to the SDK. The real-MinIO proof that its
// answers equal the SDK's is TestFastStatMatchesSDK in each driver.
func TestStatClientAnswers(t *testing.T) {
	const lastMod = "Mon, 02 Mar 2026 10:04:05 GMT"
	ok := func(h http.Header) {
		h.Set("Content-Length", "5")
		h.Set("Content-Type", "text/plain")
		h.Set("Last-Modified", lastMod)
		h.Set("ETag", `"abc123"`)
	}
	with := func(kv ...string) func(http.Header) {
		return func(h http.Header) {
			ok(h)
			for i := 0; i < len(kv); i += 2 {
				if kv[i+1] == "" {
					h.Del(kv[i])
				} else {
					h[kv[i]] = []string{kv[i+1]}
				}
			}
		}
	}
	modTime, err := time.Parse(http.TimeFormat, lastMod)
	if err != nil {
		t.Fatal(err)
	}
	plain := drivers.ObjectInfo{Key: "k", Size: 5, ContentType: "text/plain", ETag: "abc123", ModTime: modTime, Metadata: map[string]string{}}
	cases := []struct {
		name     string
		status   int
		header   func(http.Header)
		want     *drivers.ObjectInfo // nil: not a success
		notFound bool
		fallback string // a reason that must be given
	}{
		{name: "plain object", status: 200, header: ok, want: &plain},
		{name: "metadata and checksum", status: 200,
			header: with("X-Amz-Meta-Album", "summer  2024", "X-Amz-Meta-Upbrokerprincipal", "u-42", "X-Amz-Checksum-Sha256", "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="),
			want: &drivers.ObjectInfo{Key: "k", Size: 5, ContentType: "text/plain", ETag: "abc123", ModTime: modTime,
				Metadata: map[string]string{"album": "summer  2024", "upbrokerprincipal": "u-42"}, ChecksumSHA256: "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="}},
		{name: "checksum of part checksums", status: 200, header: with("X-Amz-Checksum-Sha256", "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=-3"), want: &plain},
		{name: "missing key", status: 404, header: func(http.Header) {}, notFound: true},
		{name: "missing key, MinIO's code", status: 404, header: with("X-Minio-Error-Code", "NoSuchKey"), notFound: true},
		{name: "missing bucket", status: 404, header: with("X-Minio-Error-Code", "NoSuchBucket"), fallback: "404 NoSuchBucket"},
		{name: "refused", status: 403, header: func(http.Header) {}, fallback: "status 403"},
		{name: "store error", status: 500, header: func(http.Header) {}, fallback: "status 500"},
		{name: "busy", status: 503, header: func(http.Header) {}, fallback: "status 503"},
		{name: "redirect is not followed", status: 301, header: with("Location", "/elsewhere"), fallback: "status 301"},
		{name: "no Content-Length", status: 200, header: with("Content-Length", ""), fallback: "Content-Length"},
		{name: "no Content-Type", status: 200, header: with("Content-Type", ""), fallback: "no Content-Type"},
		{name: "odd Last-Modified", status: 200, header: with("Last-Modified", "2026-03-02T10:04:05Z"), fallback: "Last-Modified"},
		{name: "replicated mtime", status: 200, header: with("X-Minio-Source-Mtime", "2026-03-02T10:04:05.123Z"), fallback: "X-Minio-Source-Mtime"},
		{name: "RFC 2047 metadata", status: 200, header: with("X-Amz-Meta-Name", "=?UTF-8?Q?caf=C3=A9?="), fallback: "encoded metadata value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			var got *http.Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) == 1 {
					got = r.Clone(context.Background())
				}
				tc.header(w.Header())
				w.WriteHeader(tc.status)
			}))
			defer srv.Close()
			p, err := NewPresigner(mustURL(t, probeURL(srv.URL+"/b/", "us-east-1")), "us-east-1")
			if err != nil {
				t.Fatal(err)
			}
			sc := NewStatClient(p, StatTransport(http.DefaultTransport.(*http.Transport).Clone()), "test store", "NoSuchKey")
			defer sc.CloseIdleConnections()
			info, err := sc.Stat(context.Background(), Credentials{AccessKey: "AK", SecretKey: "SK"}, "k", time.Now())

			if n := hits.Load(); n != 1 {
				t.Fatalf("%d requests reached the store, want 1", n)
			}
			if got.Method != http.MethodHead || got.URL.Path != "/b/k" || got.Header.Get("X-Amz-Checksum-Mode") != "ENABLED" ||
				!strings.Contains(got.URL.Query().Get("X-Amz-SignedHeaders"), "x-amz-checksum-mode") {
				t.Fatalf("request %s %s, checksum mode %q", got.Method, got.URL, got.Header.Get("X-Amz-Checksum-Mode"))
			}
			var fb *Fallback
			switch {
			case tc.fallback != "":
				if !errors.As(err, &fb) || fb.Reason != tc.fallback {
					t.Fatalf("Stat = %+v, %v; want a fallback for %q", info, err, tc.fallback)
				}
			case tc.notFound:
				if !errors.Is(err, drivers.ErrNotFound) || errors.As(err, &fb) || !strings.Contains(err.Error(), "(NoSuchKey)") {
					t.Fatalf("Stat = %v, want ErrNotFound with code NoSuchKey", err)
				}
			default:
				if err != nil || !reflect.DeepEqual(info, *tc.want) {
					t.Fatalf("Stat = %#v, %v\nwant %#v", info, err, *tc.want)
				}
			}
		})
	}
}

// TestStatClientNonCanonicalName: net/http keeps a header name with a
// space as sent, so minio-go (prefix "X-Amz-Meta-") skips it and the AWS
// SDK (any case) keeps it: the fast path leaves it to the SDK. Go's own
// server will not send such a name, so this one writes the answer raw.
func TestStatClientNonCanonicalName(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n"+
			"Last-Modified: Mon, 02 Mar 2026 10:04:05 GMT\r\nETag: \"abc\"\r\nx-amz-meta-a b: v\r\n\r\n")
	}()
	p, err := NewPresigner(mustURL(t, probeURL("http://"+ln.Addr().String()+"/b/", "us-east-1")), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	sc := NewStatClient(p, StatTransport(http.DefaultTransport.(*http.Transport).Clone()), "test store", "NoSuchKey")
	defer sc.CloseIdleConnections()
	_, err = sc.Stat(context.Background(), Credentials{AccessKey: "AK", SecretKey: "SK"}, "k", time.Now())
	var fb *Fallback
	if !errors.As(err, &fb) || fb.Reason != "non-canonical metadata name" {
		t.Fatalf("Stat: %v, want a fallback for the non-canonical name", err)
	}
}

// TestStatClientDeclines: the cases that never give a final answer: no
// signature possible, and no answer at all. The signed URL, a bearer
// credential while it lives, never appears in the reason.
func TestStatClientDeclines(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := srv.URL
	srv.Close() // nothing listens there now
	p, err := NewPresigner(mustURL(t, probeURL(addr+"/b/", "us-east-1")), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	sc := NewStatClient(p, StatTransport(http.DefaultTransport.(*http.Transport).Clone()), "test store", "NoSuchKey")
	creds := Credentials{AccessKey: "AK", SecretKey: "SK"}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name   string
		ctx    context.Context
		creds  Credentials
		key    string
		reason string
	}{
		{"no answer", context.Background(), creds, "k", "transport: "},
		{"cancelled", cancelled, creds, "k", "transport: "},
		{"key not UTF-8", context.Background(), creds, "k\xff", "not signable"},
		{"empty key", context.Background(), creds, "", "not signable"},
		{"no credentials", context.Background(), Credentials{}, "k", "not signable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sc.Stat(tc.ctx, tc.creds, tc.key, time.Now())
			var fb *Fallback
			if !errors.As(err, &fb) || !strings.HasPrefix(fb.Reason, tc.reason) {
				t.Fatalf("Stat = %v, want a fallback %q", err, tc.reason)
			}
			if strings.Contains(err.Error(), "X-Amz-") || strings.Contains(err.Error(), "/b/k") {
				t.Fatalf("the reason quotes the signed URL: %v", err)
			}
		})
	}
	var nilClient *StatClient
	if _, err := nilClient.Stat(context.Background(), creds, "k", time.Now()); !errors.As(err, new(*Fallback)) {
		t.Fatalf("nil StatClient: %v, want a fallback", err)
	}
}
