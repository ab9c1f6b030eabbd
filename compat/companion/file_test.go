package companion

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/ratelimit"
)

func fileStack(t *testing.T, max config.Size, o stackOpts) *stack {
	t.Helper()
	return newStack(t, "local", "file", drivers.Settings{"path": t.TempDir()}, imagesProfile("local", max), o)
}

// With the file driver, /params hands out the driver's own signed form,
// and the driver's handler takes Uppy's POST itself, holding it to the
// same policy: type, max size, signed metadata.
func TestFilePostForm(t *testing.T) {
	const max = 64 << 10
	s := fileStack(t, max, stackOpts{})
	tests := []struct {
		name     string
		size     int
		wantPost int // status of the form POST
		stored   bool
	}{
		{"small", 300, http.StatusNoContent, true},
		{"exactly max", max, http.StatusNoContent, true},
		{"one byte over", max + 1, http.StatusRequestEntityTooLarge, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.call(t, "alice", http.MethodGet, paramsQuery("Photo.PNG", "image/png", map[string]string{"caption": "a cat", "name": "Photo.PNG"}), nil)
			if r.status != http.StatusOK {
				t.Fatalf("params: %s", r)
			}
			var p paramsReply
			r.decode(t, &p)
			key := p.Fields["key"]
			if p.Method != "POST" || !strings.HasPrefix(key, "images/alice/") || !strings.HasSuffix(key, ".png") || p.Expires <= 0 {
				t.Fatalf("params answer: %+v", p)
			}
			if !strings.HasPrefix(p.URL, s.URL+"/v1/blob/local/") {
				t.Fatalf("file driver form URL %q is not on the blob route", p.URL)
			}
			data := sized(t, tc.size)
			up := postForm(t, p, "Photo.PNG", "image/png", data)
			if up.status != tc.wantPost {
				t.Fatalf("form POST: %s, want %d", up, tc.wantPost)
			}
			if !tc.stored {
				if keys := listKeys(t, s.drv, "images/"); containsKey(keys, key) {
					t.Fatalf("refused upload left %s", key)
				}
				return
			}
			if up.header.Get("ETag") == "" {
				t.Errorf("no ETag on the form answer (Uppy 5 waits for it)")
			}
			info, err := s.drv.Stat(context.Background(), key)
			if err != nil {
				t.Fatalf("stat: %v", err)
			}
			if info.Size != int64(len(data)) || info.ContentType != "image/png" {
				t.Errorf("object: %+v", info)
			}
			if got := readAll(t, s.drv, key, int64(len(data))); !bytes.Equal(got, data) {
				t.Errorf("object bytes differ")
			}
			want := map[string]string{MetaPrincipal: "alice", MetaProfile: profileName, "caption": "a cat", "name": "Photo.PNG"}
			for k, v := range want {
				if info.Metadata[k] != v {
					t.Errorf("metadata %s = %q, want %q (all: %v)", k, info.Metadata[k], v, info.Metadata)
				}
			}
		})
	}
}

func containsKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// Every refusal that does not need a multipart store, on the file driver.
func TestFileRefusals(t *testing.T) {
	s := fileStack(t, 1<<20, stackOpts{})
	tests := []struct {
		name, who, method, path string
		body                    any
		status                  int
		errHas                  string
	}{
		{"no credential", "", "GET", paramsQuery("a.png", "image/png", nil), nil, 401, "API key"},
		{"bad credential", "upb_wrong", "GET", paramsQuery("a.png", "image/png", nil), nil, 401, "invalid"},
		{"profile not allowed", "carol", "GET", paramsQuery("a.png", "image/png", nil), nil, 403, "profile images"},
		{"type not allowed", "alice", "GET", paramsQuery("a.html", "text/html", nil), nil, 415, "text/html"},
		{"type with parameter", "alice", "GET", paramsQuery("a.png", "image/png; x=1", nil), nil, 415, "type"},
		{"type malformed", "alice", "GET", paramsQuery("a.png", "png", nil), nil, 400, "type"},
		{"type missing", "alice", "GET", "/params?filename=a.png", nil, 400, "type: required"},
		{"filename missing", "alice", "GET", "/params?type=image%2Fpng", nil, 400, "filename: required"},
		{"reserved metadata", "alice", "GET", paramsQuery("a.png", "image/png", map[string]string{"upbrokerprincipal": "bob"}), nil, 400, "metadata.upbrokerprincipal"},
		{"bad metadata key", "alice", "GET", paramsQuery("a.png", "image/png", map[string]string{"a_b": "x"}), nil, 400, "metadata"},
		{"multipart unsupported", "alice", "POST", "/multipart", map[string]any{"filename": "a.png", "type": "image/png"}, 400, "multipart"},
		{"multipart type refused first", "alice", "POST", "/multipart", map[string]any{"filename": "a.png", "type": "text/html"}, 415, "text/html"},
		{"multipart bad json", "alice", "POST", "/multipart", "not an object", 400, "body"},
		{"multipart metadata object", "alice", "POST", "/multipart", map[string]any{"filename": "a.png", "type": "image/png", "metadata": map[string]any{"x": map[string]any{}}}, 400, "metadata.x"},
		{"other principal's key", "bob", "GET", "/multipart/abc/1?key=images/alice/0123456789abcdef0123456789abcdef.png", nil, 403, "not made for you"},
		{"key with dot segment", "alice", "GET", "/multipart/abc/1?key=images/alice/../bob/x.png", nil, 400, "key"},
		{"key missing", "alice", "GET", "/multipart/abc/1", nil, 400, "key: required"},
		{"uploadId bad byte", "alice", "GET", "/multipart/a%20b/1?key=images/alice/0123456789abcdef0123456789abcdef.png", nil, 400, "uploadId"},
		{"not found", "alice", "GET", "/nope", nil, 404, "route"},
		{"wrong method", "alice", "PUT", "/params", nil, 405, "PUT"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.call(t, tc.who, tc.method, tc.path, tc.body)
			if r.status != tc.status || !strings.Contains(r.errorText(), tc.errHas) {
				t.Fatalf("got %s, want %d with %q", r, tc.status, tc.errHas)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
	if keys := listKeys(t, s.drv, ""); len(keys) != 0 {
		t.Errorf("refusals stored objects: %v", keys)
	}
}

// /params and POST /multipart are rate limited per principal, with
// Retry-After; other principals are not affected.
func TestRateLimit(t *testing.T) {
	lim, err := ratelimit.New(context.Background(), config.RateLimit{GrantsPerMinute: 1, Burst: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lim.Close() })
	// Refusals are reported, so the broker's rate_limited_total counts
	// them; grants are not.
	var refused []string
	s := fileStack(t, 1<<20, stackOpts{limiter: lim, onRateLimited: func(reason string) { refused = append(refused, reason) }})
	steps := []struct {
		who    string
		status int
	}{
		{"alice", 200}, {"alice", 200}, {"alice", 429}, {"bob", 200},
	}
	for i, st := range steps {
		r := s.call(t, st.who, http.MethodGet, paramsQuery("a.png", "image/png", nil), nil)
		if r.status != st.status {
			t.Fatalf("step %d (%s): %s, want %d", i, st.who, r, st.status)
		}
		if st.status == 429 && r.header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	if !slices.Equal(refused, []string{ratelimit.ReasonGrants}) {
		t.Errorf("OnRateLimited saw %q, want one %q", refused, ratelimit.ReasonGrants)
	}
}

// failingAuth stands for an identity provider that cannot be reached.
type failingAuth struct{}

func (failingAuth) Authenticate(*http.Request) (auth.Principal, error) {
	return auth.Principal{}, fmt.Errorf("%w: jwks fetch failed", auth.ErrUnavailable)
}

// An unreachable identity provider is 503, like the broker, not 401: the
// caller's credential may be fine.
func TestAuthUnavailable(t *testing.T) {
	s := fileStack(t, 1<<20, stackOpts{auth: failingAuth{}})
	r := s.call(t, "alice", http.MethodGet, paramsQuery("a.png", "image/png", nil), nil)
	if r.status != http.StatusServiceUnavailable || r.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("got %s, want 503 without WWW-Authenticate", r)
	}
}

func TestNewRefusesBadSetups(t *testing.T) {
	d, err := drivers.Open(context.Background(), "file", drivers.Settings{"path": t.TempDir()},
		drivers.Env{Backend: "local", BaseURL: "http://127.0.0.1:1", SigningKey: bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	good := func() Options {
		return Options{Config: config.Companion{Enabled: true, Path: "/s3"}, ProfileName: profileName,
			Profile: imagesProfile("local", 1<<20), Backend: "local", Driver: d, Auth: testAuth(t)}
	}
	tests := []struct {
		name   string
		edit   func(*Options)
		errHas string
	}{
		{"ok", func(*Options) {}, ""},
		{"nested path", func(o *Options) { o.Config.Path = "/uploads/s3" }, ""},
		{"no principal in template", func(o *Options) { o.Profile.Key = "images/{uuid}{ext}" }, "{principal}"},
		{"path without s3", func(o *Options) { o.Config.Path = "/companion" }, "must end in /s3"},
		{"no auth", func(o *Options) { o.Auth = nil }, "authenticator"},
		{"no driver", func(o *Options) { o.Driver = nil }, "not open"},
		{"bad profile", func(o *Options) { o.Profile.ContentTypes = nil }, "content_types"},
		{"bad on_store_error", func(o *Options) { o.OnStoreError = "maybe" }, "on_store_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			tc.edit(&o)
			_, err := New(o)
			switch {
			case tc.errHas == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
				t.Fatalf("error %v, want one with %q", err, tc.errHas)
			}
		})
	}
}

func TestPartLimit(t *testing.T) {
	caps := drivers.Capabilities{MinPartSize: 5 * mib, MaxParts: 10000}
	tests := []struct {
		max  int64
		caps drivers.Capabilities
		want int
	}{
		{5 * mib, caps, 1},
		{5*mib + 1, caps, 2},
		{12 * mib, caps, 3},
		{1 << 50, caps, 10000},
		{100, drivers.Capabilities{}, 10000},
		{100 * mib, drivers.Capabilities{MinPartSize: mib, MaxParts: 50}, 50},
	}
	for _, tc := range tests {
		if got := partLimit(tc.max, tc.caps); got != tc.want {
			t.Errorf("partLimit(%d, %+v) = %d, want %d", tc.max, tc.caps, got, tc.want)
		}
	}
}

func TestMetadataNormalization(t *testing.T) {
	tests := []struct {
		name   string
		in     map[string]string
		want   map[string]string
		errHas string
	}{
		{"lower-cased keys", map[string]string{"relativePath": "a/b"}, map[string]string{"relativepath": "a/b"}, ""},
		{"non-ASCII encoded", map[string]string{"name": "café.png"}, map[string]string{"name": "=?UTF-8?b?Y2Fmw6kucG5n?="}, ""},
		{"CR LF encoded", map[string]string{"x": "a\r\nb"}, map[string]string{"x": "=?UTF-8?b?YQ0KYg==?="}, ""},
		{"reserved", map[string]string{"UpbrokerProfile": "x"}, nil, "metadata.upbrokerprofile"},
		{"case duplicate", map[string]string{"A": "1", "a": "2"}, nil, "twice"},
		{"bad key", map[string]string{"a b": "1"}, nil, "metadata"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, e := normalizeMetadata(tc.in)
			if tc.errHas != "" {
				if e == nil || !strings.Contains(e.msg, tc.errHas) || e.status != 400 {
					t.Fatalf("got %v %v, want 400 with %q", got, e, tc.errHas)
				}
				return
			}
			if e != nil {
				t.Fatal(e)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestOwnerPattern(t *testing.T) {
	d, err := drivers.Open(context.Background(), "file", drivers.Settings{"path": t.TempDir()},
		drivers.Env{Backend: "local", BaseURL: "http://127.0.0.1:1", SigningKey: bytes.Repeat([]byte("k"), 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	const uuid = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		tmpl, principal, key string
		ok                   bool
	}{
		{"{profile}/{principal}/{uuid}{ext}", "ann", "images/ann/" + uuid + ".png", true},
		{"{profile}/{principal}/{uuid}{ext}", "ann", "images/ann/" + uuid, true},
		{"{profile}/{principal}/{uuid}{ext}", "ann", "images/bob/" + uuid + ".png", false},
		{"{profile}/{principal}/{uuid}{ext}", "ann", "images/ann/" + uuid + ".png/x", false},
		{"{profile}/{principal}/{uuid}{ext}", "ann", "images/ann/x" + uuid, false},
		{"up/{principal}-{uuid}", "ann", "up/ann-" + uuid, true},
		{"up/{principal}-{uuid}", "ann", "up/ann-2-" + uuid, false},
		{"up/{principal}-{uuid}", "ann-2", "up/ann-" + uuid, false},
		{"{date}/{principal}/{uuid}", "ann", "2026-01-02/ann/" + uuid, true},
		{"{date}/{principal}/{uuid}", "a b", "2026-01-02/_" + "0000000000000000" + "/" + uuid, false},
	}
	for _, tc := range tests {
		prof := imagesProfile("local", 1<<20)
		prof.Key = tc.tmpl
		h, err := newHandler(Options{ProfileName: profileName, Profile: prof, Backend: "local", Driver: d, Auth: testAuth(t)})
		if err != nil {
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
		e := h.checkOwnedKey(tc.principal, tc.key)
		if (e == nil) != tc.ok {
			t.Errorf("template %s, principal %s, key %s: %v, want ok=%t", tc.tmpl, tc.principal, tc.key, e, tc.ok)
		}
	}
}
