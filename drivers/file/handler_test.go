package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// testServer is a file driver behind a real HTTP server on 127.0.0.1,
// mounted as the broker mounts it. wg counts requests in flight, so a test
// can wait for the handler to finish before looking at the folder.
// idle orders each request's wg.Add before or after a wait (sync.WaitGroup
// forbids an Add from zero concurrent with Wait; a client that sees a
// broken connection may wait while its handler is still starting).
type testServer struct {
	d    *Driver
	dir  string
	url  string
	wg   sync.WaitGroup
	idle sync.Mutex
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	ts := &testServer{dir: t.TempDir()}
	var h http.Handler
	mux := http.NewServeMux()
	mux.Handle("/v1/blob/local/", http.StripPrefix("/v1/blob/local", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.idle.Lock()
		ts.wg.Add(1)
		ts.idle.Unlock()
		defer ts.wg.Done()
		h.ServeHTTP(w, r)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	d, err := Open(ts.dir, drivers.Env{Backend: "local", BaseURL: srv.URL, SigningKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	ts.d, ts.url, h = d, srv.URL, d.Handler()
	return ts
}

// wait returns when no request is in flight.
func (ts *testServer) wait() {
	ts.idle.Lock()
	defer ts.idle.Unlock()
	ts.wg.Wait()
}

// files lists every file under the folder, relative and sorted.
func (ts *testServer) files(t *testing.T) []string {
	t.Helper()
	ts.wait()
	var out []string
	err := filepath.WalkDir(ts.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			rel, _ := filepath.Rel(ts.dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	slices.Sort(out)
	return out
}

type apiErr struct {
	Error struct{ Code, Message, Field string } `json:"error"`
}

type req struct {
	method  string
	url     string
	headers map[string]string
	body    io.Reader
	length  int64 // -1: chunked (unknown length)
}

func do(t *testing.T, r req) (*http.Response, apiErr) {
	t.Helper()
	hr, err := http.NewRequest(r.method, r.url, r.body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	hr.ContentLength = r.length
	if r.length == 0 {
		hr.Body = http.NoBody
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.url, err)
	}
	defer resp.Body.Close()
	var e apiErr
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(b, &e); err != nil {
			t.Errorf("error body is not the API's JSON error: %q", b)
		}
	}
	return resp, e
}

// chunked hides a reader's length, so net/http sends it chunked.
type chunked struct{ io.Reader }

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

func withQuery(t *testing.T, raw string, edit func(q url.Values)) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	edit(q)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestHandlerRefusals(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 100)
	ctx := context.Background()
	base := drivers.Constraints{ContentType: "image/png", Size: 100, Expires: time.Minute, NoOverwrite: true,
		Metadata: map[string]string{"album": "a", "upbrokerprincipal": "anon"}}

	// Each case gets a fresh server and folder; prepare may put objects in
	// place and returns the request to send.
	cases := []struct {
		name    string
		prepare func(t *testing.T, ts *testServer, g drivers.Grant) req
		status  int
		code    string
		message string   // a substring of the message
		keep    []string // files expected in the folder afterwards
	}{
		{"BadSignature", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", withQuery(t, g.URL, func(q url.Values) { q.Set(pSig, "A"+q.Get(pSig)[1:]) }), g.Headers, bytes.NewReader(body), 100}
		}, 403, "forbidden", "signature", nil},
		{"BadFileblobSignature", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", withQuery(t, g.URL, func(q url.Values) { q.Set(pSignature, "A"+q.Get(pSignature)[1:]) }), g.Headers, bytes.NewReader(body), 100}
		}, 403, "forbidden", "signature", nil},
		{"NoSignature", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", withQuery(t, g.URL, func(q url.Values) { q.Del(pSig) }), g.Headers, bytes.NewReader(body), 100}
		}, 403, "forbidden", "no signature", nil},
		{"SizeRaisedInURL", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", withQuery(t, g.URL, func(q url.Values) { q.Set(pSize, "101") }), g.Headers, bytes.NewReader(append(body, 'y')), 101}
		}, 403, "forbidden", "signature", nil},
		{"NoClobberDropped", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", withQuery(t, g.URL, func(q url.Values) { q.Del(pNoClobber) }), g.Headers, bytes.NewReader(body), 100}
		}, 403, "forbidden", "signature", nil},
		{"OtherKey", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", strings.Replace(g.URL, "/a/obj.png", "/a/other.png", 1), g.Headers, bytes.NewReader(body), 100}
		}, 403, "forbidden", "another key", nil},
		{"Expired", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			q, _, err := ts.d.sign.sign(ctx, ticket{Key: "a/obj.png", Method: "PUT", ContentType: "image/png", Size: 100, Max: -1}, -time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			return req{"PUT", ts.d.sign.url("a/obj.png", q), map[string]string{"Content-Type": "image/png"}, bytes.NewReader(body), 100}
		}, 403, "forbidden", "expired", nil},
		{"WrongMethodGET", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"GET", g.URL, g.Headers, nil, 0}
		}, 403, "forbidden", "not the signed method", nil},
		{"WrongMethodDELETE", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"DELETE", g.URL, g.Headers, nil, 0}
		}, 403, "forbidden", "not the signed method", nil},
		{"GetURLUsedForPut", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			gg, err := ts.d.PresignGet(ctx, "a/obj.png", drivers.GetOptions{Expires: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			return req{"PUT", gg.URL, g.Headers, bytes.NewReader(body), 100}
		}, 403, "forbidden", "not the signed method", nil},
		{"WrongContentType", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			h := maps.Clone(g.Headers)
			h["Content-Type"] = "text/html"
			return req{"PUT", g.URL, h, bytes.NewReader(body), 100}
		}, 403, "forbidden", "Content-Type", nil},
		{"MissingMetadata", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			h := maps.Clone(g.Headers)
			delete(h, "X-Upbroker-Meta-Album")
			return req{"PUT", g.URL, h, bytes.NewReader(body), 100}
		}, 403, "forbidden", "missing", nil},
		{"ChangedMetadata", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			h := maps.Clone(g.Headers)
			h["X-Upbroker-Meta-Album"] = "b"
			return req{"PUT", g.URL, h, bytes.NewReader(body), 100}
		}, 403, "forbidden", "signature", nil},
		{"UnsignedMetadata", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			h := maps.Clone(g.Headers)
			h["X-Upbroker-Meta-Extra"] = "1"
			return req{"PUT", g.URL, h, bytes.NewReader(body), 100}
		}, 403, "forbidden", "not signed", nil},
		{"OneByteOverDeclared", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", g.URL, g.Headers, bytes.NewReader(append(body, 'y')), 101}
		}, 413, "too_large", "over the signed size", nil},
		{"OneByteOverChunked", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", g.URL, g.Headers, chunked{bytes.NewReader(append(body, 'y'))}, -1}
		}, 413, "too_large", "larger than the signed size", nil},
		{"FarOverChunked", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", g.URL, g.Headers, chunked{io.LimitReader(zeros{}, 8<<20)}, -1}
		}, 413, "too_large", "larger than the signed size", nil},
		{"ShortDeclared", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", g.URL, g.Headers, bytes.NewReader(body[:99]), 99}
		}, 403, "forbidden", "not the signed size", nil},
		{"ShortChunked", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", g.URL, g.Headers, chunked{bytes.NewReader(body[:99])}, -1}
		}, 403, "forbidden", "not the signed 100", nil},
		{"ChecksumMismatch", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			c := base
			c.ChecksumSHA256 = sha([]byte("other"))
			g2, err := ts.d.PresignPut(ctx, "a/obj.png", c)
			if err != nil {
				t.Fatal(err)
			}
			return req{"PUT", g2.URL, g2.Headers, bytes.NewReader(body), 100}
		}, 400, "invalid_request", "SHA-256", nil},
		{"Overwrite", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			c := base
			c.Metadata = nil
			g0, err := ts.d.PresignPut(ctx, "a/obj.png", c)
			if err != nil {
				t.Fatal(err)
			}
			if resp, _ := do(t, req{"PUT", g0.URL, g0.Headers, bytes.NewReader(body), 100}); resp.StatusCode != 200 {
				t.Fatalf("first upload: %d", resp.StatusCode)
			}
			return req{"PUT", g.URL, g.Headers, bytes.NewReader(bytes.Repeat([]byte("z"), 100)), 100}
		}, 412, "exists", "already exists", []string{"a/obj.png", "a/obj.png.attrs"}},
		{"BadKeyPath", func(t *testing.T, ts *testServer, g drivers.Grant) req {
			return req{"PUT", ts.url + "/v1/blob/local/a/..%2f..%2fetc/passwd?" + strings.SplitN(g.URL, "?", 2)[1], g.Headers, bytes.NewReader(body), 100}
		}, 404, "not_found", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			g, err := ts.d.PresignPut(ctx, "a/obj.png", base)
			if err != nil {
				t.Fatal(err)
			}
			resp, e := do(t, tc.prepare(t, ts, g))
			if resp.StatusCode != tc.status || e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.message) {
				t.Errorf("got %d %q %q, want %d %q containing %q", resp.StatusCode, e.Error.Code, e.Error.Message, tc.status, tc.code, tc.message)
			}
			if got := ts.files(t); !slices.Equal(got, tc.keep) {
				t.Errorf("folder holds %v, want %v", got, tc.keep)
			}
			if tc.name == "Overwrite" {
				if b, err := ts.d.ReadRange(ctx, "a/obj.png", 0, 200); err != nil || !bytes.Equal(b, body) {
					t.Errorf("the refused overwrite changed the object (%v)", err)
				}
			}
		})
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestPostRefusals(t *testing.T) {
	ctx := context.Background()
	c := drivers.Constraints{ContentType: "image/png", MaxSize: 100, Expires: time.Minute, NoOverwrite: true,
		Metadata: map[string]string{"album": "a"}}
	build := func(fields map[string]string, file []byte, withFile bool) (string, *bytes.Buffer) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			_ = mw.WriteField(k, fields[k])
		}
		if withFile {
			fw, _ := mw.CreateFormFile("file", "x.png")
			_, _ = fw.Write(file)
		}
		_ = mw.Close()
		return mw.FormDataContentType(), &b
	}
	cases := []struct {
		name   string
		edit   func(f map[string]string)
		size   int
		noFile bool
		rawCT  string
		status int
		code   string
	}{
		{"AtMax", nil, 100, false, "", 204, ""},
		{"OneByteOver", nil, 101, false, "", 413, "too_large"},
		{"WrongType", func(f map[string]string) { f["Content-Type"] = "text/html" }, 10, false, "", 403, "forbidden"},
		{"MaxRaised", func(f map[string]string) { f[pMax] = "1000" }, 10, false, "", 403, "forbidden"},
		{"UnsignedMeta", func(f map[string]string) { f["x-upbroker-meta-extra"] = "1" }, 10, false, "", 403, "forbidden"},
		{"NoSignature", func(f map[string]string) { delete(f, pSig) }, 10, false, "", 403, "forbidden"},
		{"NoFile", nil, 0, true, "", 400, "invalid_request"},
		{"NotMultipart", nil, 10, false, "application/json", 400, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			g, err := ts.d.PresignPost(ctx, "p/obj.png", c)
			if err != nil {
				t.Fatal(err)
			}
			f := maps.Clone(g.Fields)
			if tc.edit != nil {
				tc.edit(f)
			}
			ct, b := build(f, bytes.Repeat([]byte("p"), tc.size), !tc.noFile)
			if tc.rawCT != "" {
				ct = tc.rawCT
			}
			resp, e := do(t, req{"POST", g.URL, map[string]string{"Content-Type": ct}, b, int64(b.Len())})
			if resp.StatusCode != tc.status || e.Error.Code != tc.code {
				t.Errorf("got %d %q (%s), want %d %q", resp.StatusCode, e.Error.Code, e.Error.Message, tc.status, tc.code)
			}
			var want []string
			if tc.status == 204 {
				want = []string{"p/obj.png", "p/obj.png.attrs"}
				info, err := ts.d.Stat(ctx, "p/obj.png")
				if err != nil || info.Size != int64(tc.size) || info.ContentType != "image/png" || info.Metadata["album"] != "a" {
					t.Errorf("Stat = %+v, %v", info, err)
				}
			}
			if got := ts.files(t); !slices.Equal(got, want) {
				t.Errorf("folder holds %v, want %v", got, want)
			}
		})
	}
}

// failing sends n bytes, then breaks, as a client that loses its network.
type failing struct{ n int }

func (f *failing) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, fmt.Errorf("network gone")
	}
	k := min(len(p), f.n)
	clear(p[:k])
	f.n -= k
	return k, nil
}

func TestBrokenUploadLeavesNothing(t *testing.T) {
	ts := newTestServer(t)
	g, err := ts.d.PresignPut(context.Background(), "b/obj.bin", drivers.Constraints{ContentType: "application/octet-stream", Size: 1 << 20, Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, length := range []int64{1 << 20, -1} {
		hr, _ := http.NewRequest("PUT", g.URL, &failing{n: 300 << 10})
		hr.ContentLength = length
		hr.Header.Set("Content-Type", "application/octet-stream")
		if resp, err := http.DefaultClient.Do(hr); err == nil {
			resp.Body.Close()
			t.Fatalf("length %d: the broken upload got an answer %d", length, resp.StatusCode)
		}
		if got := ts.files(t); len(got) != 0 {
			t.Errorf("length %d: a broken upload left %v", length, got)
		}
	}
}

func TestConcurrentNoOverwrite(t *testing.T) {
	ts := newTestServer(t)
	const writers = 16
	ctx := context.Background()
	bodies := make([][]byte, writers)
	grants := make([]drivers.Grant, writers)
	for i := range writers {
		bodies[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
		g, err := ts.d.PresignPut(ctx, "race/obj.bin", drivers.Constraints{ContentType: "application/octet-stream", Size: 64 << 10, NoOverwrite: true, Expires: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		grants[i] = g
	}
	statuses := make([]int, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			hr, _ := http.NewRequest("PUT", grants[i].URL, bytes.NewReader(bodies[i]))
			hr.Header.Set("Content-Type", "application/octet-stream")
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Errorf("writer %d: %v", i, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			if winner >= 0 {
				t.Errorf("writers %d and %d both won", winner, i)
			}
			winner = i
		case http.StatusPreconditionFailed:
		default:
			t.Errorf("writer %d got %d, want 200 or 412", i, s)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	got, err := ts.d.ReadRange(ctx, "race/obj.bin", 0, 1<<20)
	if err != nil || !bytes.Equal(got, bodies[winner]) {
		t.Errorf("object is not the winner's bytes (%v)", err)
	}
	if files := ts.files(t); !slices.Equal(files, []string{"race/obj.bin", "race/obj.bin.attrs"}) {
		t.Errorf("folder holds %v", files)
	}
}

func TestGetServesFile(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	put := func(key, ct string, b []byte) {
		g, err := ts.d.PresignPut(ctx, key, drivers.Constraints{ContentType: ct, Size: int64(len(b)), Expires: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if resp, _ := do(t, req{"PUT", g.URL, g.Headers, bytes.NewReader(b), int64(len(b))}); resp.StatusCode != 200 {
			t.Fatalf("put %s: %d", key, resp.StatusCode)
		}
	}
	put("g/cat.png", "image/png", []byte("0123456789"))
	put("g/page.html", "text/html", []byte("<script>alert(1)</script>"))
	cases := []struct {
		name, key, filename, rangeHdr string
		status                        int
		body, disposition             string
	}{
		{"Inline", "g/cat.png", "", "", 200, "0123456789", `inline; filename=cat.png`},
		{"Named", "g/cat.png", `../evil "x".png`, "", 200, "0123456789", `attachment; filename="evil x.png"`},
		{"Unicode", "g/cat.png", "Kätzchen.png", "", 200, "0123456789", `attachment; filename*=utf-8''K%C3%A4tzchen.png`},
		{"Range", "g/cat.png", "", "bytes=2-4", 206, "234", `inline; filename=cat.png`},
		{"HTMLIsAttachment", "g/page.html", "", "", 200, "<script>alert(1)</script>", `attachment; filename=page.html`},
		{"Missing", "g/none.png", "", "", 404, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := ts.d.PresignGet(ctx, tc.key, drivers.GetOptions{Expires: time.Minute, Filename: tc.filename})
			if err != nil {
				t.Fatal(err)
			}
			hr, _ := http.NewRequest("GET", g.URL, nil)
			if tc.rangeHdr != "" {
				hr.Header.Set("Range", tc.rangeHdr)
			}
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, b)
			}
			if tc.status >= 400 {
				return
			}
			if string(b) != tc.body {
				t.Errorf("body %q, want %q", b, tc.body)
			}
			if d := resp.Header.Get("Content-Disposition"); d != tc.disposition {
				t.Errorf("Content-Disposition %q, want %q", d, tc.disposition)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("ETag") == "" {
				t.Errorf("missing nosniff or ETag: %v", resp.Header)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"images/anonymous/0f3c-e1.png", true},
		{"a.b/c_d-e", true},
		{"", false},
		{"/abs", false},
		{"a//b", false},
		{"a/", false},
		{"a/../b", false},
		{"..", false},
		{"a/./b", false},
		{"./a", false},
		{"a b", false},
		{"a\\b", false},
		{"a\x00b", false},
		{"x.png.attrs", false},
		{"x.png.17f3a2b.tmp", false},
		{"é.png", false},
		{strings.Repeat("a", 1025), false},
	} {
		if err := checkKey(tc.key); (err == nil) != tc.ok {
			t.Errorf("checkKey(%q) = %v, want ok=%v", tc.key, err, tc.ok)
		}
	}
}

func TestPing(t *testing.T) {
	ts := newTestServer(t)
	if err := ts.d.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := os.RemoveAll(ts.dir); err != nil {
		t.Fatal(err)
	}
	if err := ts.d.Ping(context.Background()); err == nil {
		t.Fatal("Ping of a removed folder succeeded")
	}
}

func TestOpenSettings(t *testing.T) {
	key := []byte("0123456789abcdef")
	for _, tc := range []struct {
		name string
		s    drivers.Settings
		env  drivers.Env
	}{
		{"NoPath", drivers.Settings{}, drivers.Env{Backend: "b", SigningKey: key}},
		{"UnknownKey", drivers.Settings{"path": t.TempDir(), "bucket": "x"}, drivers.Env{Backend: "b", SigningKey: key}},
		{"ShortKey", drivers.Settings{"path": t.TempDir()}, drivers.Env{Backend: "b", SigningKey: []byte("k")}},
		{"BadBackendName", drivers.Settings{"path": t.TempDir()}, drivers.Env{Backend: "a/b", SigningKey: key}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := drivers.Open(context.Background(), "file", tc.s, tc.env); err == nil {
				t.Fatal("Open succeeded")
			}
		})
	}
}

// The upload streams: allocations stay far below the body's size.
func TestUploadStreams(t *testing.T) {
	ts := newTestServer(t)
	const size = 64 << 20
	g, err := ts.d.PresignPut(context.Background(), "big/obj.bin", drivers.Constraints{ContentType: "application/octet-stream", Size: size, Expires: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtimeMem
	before.read()
	resp, _ := do(t, req{"PUT", g.URL, g.Headers, chunked{io.LimitReader(zeros{}, size)}, -1})
	ts.wait()
	after.read()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if grew := after.total - before.total; grew > size/8 {
		t.Errorf("a %d MiB upload allocated %d MiB: the body is being buffered", size>>20, grew>>20)
	}
}

func BenchmarkPresignPut(b *testing.B) {
	d, err := Open(b.TempDir(), drivers.Env{Backend: "local", BaseURL: "http://127.0.0.1:8080", SigningKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		b.Fatal(err)
	}
	c := drivers.Constraints{ContentType: "image/png", Size: 48213, Expires: 5 * time.Minute, NoOverwrite: true,
		Metadata: map[string]string{"upbrokerprincipal": "u-42", "upbrokerprofile": "images"}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.PresignPut(ctx, "images/u-42/0f3c2a9e-5b1d-4c7e-9f00-1a2b3c4d5e6f.png", c); err != nil {
			b.Fatal(err)
		}
	}
}
