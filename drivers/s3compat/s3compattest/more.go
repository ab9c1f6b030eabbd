package s3compattest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/internal/testenv"
)

func testMultipart(t *testing.T, s *Store) {
	ctx := context.Background()
	mp, ok := s.Driver.(drivers.Multipart)
	if !ok {
		t.Fatal("driver does not implement Multipart")
	}
	c := drivers.Constraints{ContentType: "video/mp4", MaxSize: 5<<20 + 1024, Metadata: map[string]string{"upbrokerprofile": "videos"}, Expires: time.Minute}
	part1 := bytes.Repeat([]byte{'a'}, 5<<20)
	part2 := bytes.Repeat([]byte{'b'}, 1024)

	t.Run("round trip, ETags quoted or not", func(t *testing.T) {
		key := Key("mp")
		id, err := mp.CreateMultipart(ctx, key, c)
		if err != nil {
			t.Fatalf("CreateMultipart: %v", err)
		}
		g1, err := mp.PresignPart(ctx, key, id, 1, int64(len(part1)), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if g1.Enforced.Size != drivers.BySignature {
			t.Fatalf("part with a size: enforced %+v", g1.Enforced)
		}
		// The pinned length refuses other bytes.
		if st, body := Do(t, g1, part2, nil); st != http.StatusForbidden {
			t.Fatalf("part of the wrong size: %d %s", st, body)
		}
		etag1 := uploadPart(t, g1, part1)
		g2, err := mp.PresignPart(ctx, key, id, 2, 0, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if g2.Enforced.Size != drivers.AfterUpload {
			t.Fatalf("open part: enforced %+v", g2.Enforced)
		}
		etag2 := uploadPart(t, g2, part2)
		parts, err := mp.ListParts(ctx, key, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(parts) != 2 || parts[0].Number != 1 || parts[0].Size != int64(len(part1)) || parts[1].Size != int64(len(part2)) {
			t.Fatalf("ListParts = %+v", parts)
		}
		if parts[0].ETag != strings.Trim(etag1, `"`) {
			t.Fatalf("ListParts ETag %q, upload said %q", parts[0].ETag, etag1)
		}
		// Out of order, one quoted and one bare: both are accepted.
		info, err := mp.CompleteMultipart(ctx, key, id, []drivers.Part{
			{Number: 2, ETag: strings.Trim(etag2, `"`)},
			{Number: 1, ETag: `"` + strings.Trim(etag1, `"`) + `"`},
		})
		if err != nil {
			t.Fatalf("CompleteMultipart: %v", err)
		}
		if info.Size != int64(len(part1)+len(part2)) || info.ContentType != "video/mp4" || info.Metadata["upbrokerprofile"] != "videos" {
			t.Fatalf("completed object = %+v", info)
		}
		if info.ChecksumSHA256 != "" {
			t.Fatalf("a multipart object has no whole-object SHA-256, got %q", info.ChecksumSHA256)
		}
	})

	t.Run("complete refuses bad parts", func(t *testing.T) {
		key := Key("mp-bad")
		id, err := mp.CreateMultipart(ctx, key, c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = mp.AbortMultipart(ctx, key, id) })
		small, err := mp.PresignPart(ctx, key, id, 1, int64(len(part2)), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		etagSmall := uploadPart(t, small, part2)
		g2, _ := mp.PresignPart(ctx, key, id, 2, int64(len(part2)), time.Minute)
		etag2 := uploadPart(t, g2, part2)
		cases := []struct {
			name  string
			id    string
			parts []drivers.Part
			want  error
		}{
			{"no parts", id, nil, drivers.ErrInvalid},
			{"repeated part", id, []drivers.Part{{Number: 1, ETag: etagSmall}, {Number: 1, ETag: etagSmall}}, drivers.ErrInvalid},
			{"unknown etag", id, []drivers.Part{{Number: 1, ETag: "0123456789abcdef0123456789abcdef"}}, drivers.ErrInvalid},
			{"part under 5 MiB before the last", id, []drivers.Part{{Number: 1, ETag: etagSmall}, {Number: 2, ETag: etag2}}, drivers.ErrInvalid},
			{"unknown upload", "not-an-upload-id", []drivers.Part{{Number: 1, ETag: etagSmall}}, drivers.ErrNotFound},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := mp.CompleteMultipart(ctx, key, tc.id, tc.parts)
				if !errors.Is(err, tc.want) {
					t.Fatalf("CompleteMultipart = %v, want %v", err, tc.want)
				}
			})
		}
	})

	t.Run("abort leaves nothing", func(t *testing.T) {
		key := Key("mp-abort")
		id, err := mp.CreateMultipart(ctx, key, c)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := mp.PresignPart(ctx, key, id, 1, int64(len(part2)), time.Minute)
		uploadPart(t, g, part2)
		if err := mp.AbortMultipart(ctx, key, id); err != nil {
			t.Fatalf("AbortMultipart: %v", err)
		}
		if _, err := mp.ListParts(ctx, key, id); !errors.Is(err, drivers.ErrNotFound) {
			t.Fatalf("ListParts after abort = %v, want ErrNotFound", err)
		}
		if _, err := s.Driver.Stat(ctx, key); !errors.Is(err, drivers.ErrNotFound) {
			t.Fatalf("Stat after abort = %v, want ErrNotFound", err)
		}
	})

	t.Run("part limits", func(t *testing.T) {
		for _, tc := range []struct {
			part int
			size int64
		}{{0, 1}, {10001, 1}, {1, -1}, {1, 5<<30 + 1}} {
			if _, err := mp.PresignPart(ctx, "k", "id", tc.part, tc.size, time.Minute); !errors.Is(err, drivers.ErrInvalid) {
				t.Fatalf("PresignPart(part %d, size %d) = %v, want ErrInvalid", tc.part, tc.size, err)
			}
		}
	})
}

func uploadPart(t *testing.T, g drivers.Grant, b []byte) string {
	t.Helper()
	req, _ := http.NewRequest(g.Method, g.URL, bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
		t.Fatalf("part upload: %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	return resp.Header.Get("ETag")
}

// testPublicEndpoint: the URLs carry public_endpoint's host while the
// driver's own calls go to endpoint. A proxy that rewrites nothing but the
// host is simulated by sending the signed request to the real server with
// the public Host header, which is what the signature covers.
func testPublicEndpoint(t *testing.T, s *Store, open Opener) {
	ctx := context.Background()
	const public = "files.example.test:8443"
	set := Settings(s.MinIO, s.Bucket)
	set["public_endpoint"] = "https://" + public
	d := open(t, set)
	key := Key("public")
	body := []byte("through the proxy")
	g, err := d.PresignPut(ctx, key, drivers.Constraints{ContentType: "text/plain", Size: int64(len(body)), Expires: time.Minute, NoOverwrite: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(g.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "https" || u.Host != public {
		t.Fatalf("signed URL %s should point at https://%s", g.URL, public)
	}
	// Replay it at the real server as a reverse proxy would.
	internal, _ := url.Parse(s.MinIO.Endpoint)
	st, resp := Do(t, g, body, func(r *http.Request) {
		r.URL.Scheme, r.URL.Host = internal.Scheme, internal.Host
		r.Host = public
	})
	if st != http.StatusOK {
		t.Fatalf("upload through the public host: %d %s", st, resp)
	}
	// Stat goes to endpoint: it works although public_endpoint does not
	// resolve.
	info, err := d.Stat(ctx, key)
	if err != nil || info.Size != int64(len(body)) {
		t.Fatalf("Stat via endpoint = %+v, %v", info, err)
	}
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("Ping via endpoint: %v", err)
	}
	pp := d.(drivers.PostPresigner)
	pg, err := pp.PresignPost(ctx, key, drivers.Constraints{ContentType: "text/plain", MaxSize: 10, Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if pu, _ := url.Parse(pg.URL); pu.Host != public {
		t.Fatalf("POST URL %s should point at %s", pg.URL, public)
	}
}

// testStoreDown: with the store stopped, presigning still works (it needs
// no network), every call that reaches the store fails with
// ErrUnavailable naming the endpoint and no secret, and once the store is
// back, a URL signed while it was down uploads.
func testStoreDown(t *testing.T, open Opener) {
	ctx := context.Background()
	m := testenv.StartMinIO(t)
	bucket := m.Bucket(t, "downtime")
	d := open(t, Settings(m, bucket))
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("Ping while up: %v", err)
	}
	m.Stop()

	key := Key("down")
	body := []byte("signed while the store was down")
	g, err := d.PresignPut(ctx, key, drivers.Constraints{ContentType: "text/plain", Size: int64(len(body)), Expires: 5 * time.Minute, NoOverwrite: true})
	if err != nil {
		t.Fatalf("PresignPut with the store down: %v", err)
	}
	if _, err := d.(drivers.PostPresigner).PresignPost(ctx, key, drivers.Constraints{ContentType: "text/plain", MaxSize: 10, Expires: time.Minute}); err != nil {
		t.Fatalf("PresignPost with the store down: %v", err)
	}
	if _, err := d.PresignGet(ctx, key, drivers.GetOptions{Expires: time.Minute}); err != nil {
		t.Fatalf("PresignGet with the store down: %v", err)
	}
	if _, err := d.(drivers.Multipart).PresignPart(ctx, key, "some-upload", 1, 5<<20, time.Minute); err != nil {
		t.Fatalf("PresignPart with the store down: %v", err)
	}

	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Ping", d.Ping},
		{"Stat", func(ctx context.Context) error { _, err := d.Stat(ctx, key); return err }},
		{"ReadRange", func(ctx context.Context) error { _, err := d.ReadRange(ctx, key, 0, 10); return err }},
		{"Delete", func(ctx context.Context) error { return d.Delete(ctx, key) }},
		{"CreateMultipart", func(ctx context.Context) error {
			_, err := d.(drivers.Multipart).CreateMultipart(ctx, key, drivers.Constraints{ContentType: "text/plain"})
			return err
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctx)
			if !errors.Is(err, drivers.ErrUnavailable) {
				t.Fatalf("%s with the store down = %v, want ErrUnavailable", tc.name, err)
			}
			var ne net.Error
			if !errors.As(err, &ne) {
				t.Fatalf("the network cause should stay inspectable: %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, strings.TrimPrefix(m.Endpoint, "http://")) {
				t.Fatalf("message should name the endpoint %s: %s", m.Endpoint, msg)
			}
			if strings.Contains(msg, m.SecretKey) {
				t.Fatalf("message leaks the secret key: %s", msg)
			}
		})
	}

	m.Restart(t)
	if err := d.Ping(ctx); err != nil {
		t.Fatalf("Ping after restart: %v", err)
	}
	if st, resp := Do(t, g, body, nil); st != http.StatusOK {
		t.Fatalf("upload with a URL signed while down: %d %s", st, resp)
	}
}

// testCORS: MinIO's CORS is server-wide (MINIO_API_CORS_ALLOW_ORIGIN);
// a browser's preflight for a signed PUT must pass and ETag must be
// readable by script, which multipart needs.
func testCORS(t *testing.T, s *Store) {
	ctx := context.Background()
	const origin = "http://app.example.test"
	key := Key("cors")
	body := []byte("from a browser")
	g, err := s.Driver.PresignPut(ctx, key, drivers.Constraints{ContentType: "text/plain", Size: int64(len(body)), Expires: time.Minute, NoOverwrite: true, Metadata: map[string]string{"album": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{http.MethodPut, http.MethodPost} {
		pre, _ := http.NewRequest(http.MethodOptions, g.URL, nil)
		pre.Header.Set("Origin", origin)
		pre.Header.Set("Access-Control-Request-Method", method)
		pre.Header.Set("Access-Control-Request-Headers", "content-type,if-none-match,x-amz-meta-album")
		resp, err := http.DefaultClient.Do(pre)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("preflight %s: %d", method, resp.StatusCode)
		}
		if ao := resp.Header.Get("Access-Control-Allow-Origin"); ao != origin && ao != "*" {
			t.Fatalf("preflight %s: Access-Control-Allow-Origin %q", method, ao)
		}
		if am := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(am, method) {
			t.Fatalf("preflight: Access-Control-Allow-Methods %q lacks %s", am, method)
		}
	}
	req, _ := http.NewRequest(g.Method, g.URL, bytes.NewReader(body))
	for k, v := range g.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	exposed := strings.ToLower(strings.Join(resp.Header.Values("Access-Control-Expose-Headers"), ","))
	if !containsToken(exposed, "etag") {
		t.Fatalf("Access-Control-Expose-Headers %q does not expose ETag", exposed)
	}
}

func containsToken(list, tok string) bool {
	for _, f := range strings.Split(list, ",") {
		if strings.TrimSpace(f) == tok {
			return true
		}
	}
	return false
}
