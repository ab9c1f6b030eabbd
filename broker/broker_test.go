package broker_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/broker"
	"github.com/upbroker/upbroker/broker/policy"
	"github.com/upbroker/upbroker/broker/ticket"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/ratelimit"
)

var (
	pngData  = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01"), bytes.Repeat([]byte{7}, 100)...)
	htmlData = []byte("<!DOCTYPE html><html><script>alert(document.cookie)</script></html>")
)

func imageReq(size int) map[string]any {
	return map[string]any{"filename": "cat.png", "content_type": "image/png", "size": size}
}

func TestUploadRoundTrip(t *testing.T) {
	h := newHarness(t)
	sum := sha256.Sum256(pngData)
	req := imageReq(len(pngData))
	req["checksum_sha256"] = base64.StdEncoding.EncodeToString(sum[:])
	req["metadata"] = map[string]string{"album": "summer"}
	g := h.create(req, "alice")
	if !strings.HasPrefix(g.Key, "images/alice/") || !strings.HasSuffix(g.Key, ".png") || g.Backend != "local" || g.Profile != "images" {
		t.Fatalf("grant %+v", g)
	}
	if g.Upload == nil || g.Multipart != nil || g.Upload.Method != "PUT" || g.Enforced["size"] != "signature" || g.Enforced["checksum"] != "signature" {
		t.Fatalf("grant %+v enforced %v", g.Upload, g.Enforced)
	}
	if g.CompleteURL != h.srv.URL+"/v1/uploads/"+g.ID+"/complete" {
		t.Fatalf("complete_url %q", g.CompleteURL)
	}
	if r := h.put(g, pngData); r.Status != http.StatusOK {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	var first, second map[string]any
	r := h.postJSON(g.CompleteURL, nil, "alice")
	if r.Status != http.StatusOK {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	r.json(t, &first)
	if first["key"] != g.Key || first["size"] != float64(len(pngData)) || first["content_type"] != "image/png" || first["etag"] == "" {
		t.Fatalf("complete answer %v", first)
	}
	// Idempotent: the same answer again.
	r2 := h.postJSON(g.CompleteURL, "{}", "alice")
	r2.json(t, &second)
	if r2.Status != http.StatusOK || fmt.Sprint(first) != fmt.Sprint(second) {
		t.Fatalf("second completion differs: %d %v vs %v", r2.Status, second, first)
	}
	// Download: a redirect to a signed GET that serves the same bytes.
	dl := h.do("GET", first["url"].(string), nil, map[string]string{"X-Test-User": "alice"})
	if dl.Status != http.StatusTemporaryRedirect {
		t.Fatalf("download: %d %s", dl.Status, dl.Body)
	}
	got := h.do("GET", dl.Header.Get("Location"), nil, nil)
	if got.Status != 200 || !bytes.Equal(got.Body, pngData) || got.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("signed GET: %d %q", got.Status, got.Header.Get("Content-Type"))
	}
	var js struct {
		URL       string
		ExpiresAt time.Time `json:"expires_at"`
	}
	jr := h.do("GET", "/v1/downloads/"+g.Key, nil, map[string]string{"X-Test-User": "alice", "Accept": "application/json"})
	jr.json(t, &js)
	if jr.Status != 200 || js.URL == "" || js.ExpiresAt.IsZero() {
		t.Fatalf("json download: %d %s", jr.Status, jr.Body)
	}
	if ev := h.events.types(); fmt.Sprint(ev) != "[upload.completed: upload.completed:]" {
		t.Fatalf("events %v", ev)
	}
	if h.events.ev[0].Metadata["album"] != "summer" || h.events.ev[0].Principal != "alice" || h.events.ev[0].ID != h.events.ev[1].ID {
		t.Fatalf("event %+v", h.events.ev[0])
	}
}

func TestPostPolicyUpload(t *testing.T) {
	h := newHarness(t)
	data := []byte("hello form\n")
	g := h.create(map[string]any{"filename": "a.txt", "content_type": "text/plain", "size": len(data), "profile": "form"}, "")
	if g.Upload.Method != "POST" || len(g.Upload.Fields) == 0 {
		t.Fatalf("grant %+v", g.Upload)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range g.Upload.Fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", "a.txt")
	_, _ = fw.Write(data)
	_ = mw.Close()
	r := h.do("POST", g.Upload.URL, &buf, map[string]string{"Content-Type": mw.FormDataContentType()})
	if r.Status/100 != 2 {
		t.Fatalf("form upload: %d %s", r.Status, r.Body)
	}
	if c := h.postJSON(g.CompleteURL, nil, ""); c.Status != 200 {
		t.Fatalf("complete: %d %s", c.Status, c.Body)
	}
}

func TestCreateRefusals(t *testing.T) {
	h := newHarness(t)
	big := `{"filename":"a.png","content_type":"image/png","size":1,"metadata":{"a":"` + strings.Repeat("x", 70<<10) + `"}}`
	cases := []struct {
		name   string
		body   string
		hdr    map[string]string
		status int
		code   string
		field  string
	}{
		{"malformed", `{"filename":`, nil, 400, "invalid_request", "-"},
		{"not an object", `[1,2]`, nil, 400, "invalid_request", "-"},
		{"empty body", ``, nil, 400, "invalid_request", ""},
		{"trailing data", `{"filename":"a.png","content_type":"image/png","size":1}{}`, nil, 400, "invalid_request", "-"},
		{"duplicate key", `{"filename":"a.png","filename":"b.png","content_type":"image/png","size":1}`, nil, 400, "invalid_request", "filename"},
		{"duplicate nested key", `{"filename":"a.png","content_type":"image/png","size":1,"metadata":{"a":"1","a":"2"}}`, nil, 400, "invalid_request", "metadata.a"},
		{"deep nesting", `{"x":[[[[[[[[[1]]]]]]]]]}`, nil, 400, "invalid_request", ""},
		{"unknown field", `{"filename":"a.png","content_type":"image/png","size":1,"owner":"root"}`, nil, 400, "invalid_request", "owner"},
		{"missing filename", `{"content_type":"image/png","size":1}`, nil, 400, "invalid_request", "filename"},
		{"missing type", `{"filename":"a.png","size":1}`, nil, 400, "invalid_request", "content_type"},
		{"missing size", `{"filename":"a.png","content_type":"image/png"}`, nil, 400, "invalid_request", "size"},
		{"size as string", `{"filename":"a.png","content_type":"image/png","size":"10"}`, nil, 400, "invalid_request", "size"},
		{"size NaN", `{"filename":"a.png","content_type":"image/png","size":"NaN"}`, nil, 400, "invalid_request", "size"},
		{"size fraction", `{"filename":"a.png","content_type":"image/png","size":1.5}`, nil, 400, "invalid_request", "size"},
		{"size huge", `{"filename":"a.png","content_type":"image/png","size":1e300}`, nil, 400, "invalid_request", "size"},
		{"size negative", `{"filename":"a.png","content_type":"image/png","size":-1}`, nil, 400, "invalid_request", "size"},
		{"size zero", `{"filename":"a.png","content_type":"image/png","size":0}`, nil, 400, "invalid_request", "size"},
		{"size over max", `{"filename":"a.png","content_type":"image/png","size":1048577}`, nil, 413, "too_large", "size"},
		{"filename number", `{"filename":5,"content_type":"image/png","size":1}`, nil, 400, "invalid_request", "filename"},
		{"unknown profile", `{"filename":"a.png","content_type":"image/png","size":1,"profile":"nope"}`, nil, 400, "invalid_request", "profile"},
		{"type not allowed", `{"filename":"a.gif","content_type":"image/gif","size":1}`, nil, 415, "unsupported_type", "content_type"},
		{"type parameter", `{"filename":"a.png","content_type":"image/png; x=1","size":1}`, nil, 415, "unsupported_type", "content_type"},
		{"type garbage", `{"filename":"a.png","content_type":"png","size":1}`, nil, 400, "invalid_request", "content_type"},
		{"bad checksum", `{"filename":"a.png","content_type":"image/png","size":1,"checksum_sha256":"abc"}`, nil, 400, "invalid_request", "checksum_sha256"},
		{"metadata crlf", `{"filename":"a.png","content_type":"image/png","size":1,"metadata":{"a":"x\r\nX-Evil: 1"}}`, nil, 400, "invalid_request", "metadata.a"},
		{"metadata reserved", `{"filename":"a.png","content_type":"image/png","size":1,"metadata":{"upbrokerprincipal":"bob"}}`, nil, 400, "invalid_request", "metadata.upbrokerprincipal"},
		{"metadata key", `{"filename":"a.png","content_type":"image/png","size":1,"metadata":{"A_B":"x"}}`, nil, 400, "invalid_request", "metadata"},
		{"metadata not string", `{"filename":"a.png","content_type":"image/png","size":1,"metadata":{"a":1}}`, nil, 400, "invalid_request", "metadata.a"},
		{"70 KiB body", big, nil, 413, "too_large", ""},
		{"form encoded", `{"filename":"a.png","content_type":"image/png","size":1}`, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_type", ""},
		{"bad credential", `{"filename":"a.png","content_type":"image/png","size":1}`, map[string]string{"X-Test-User": "bad"}, 401, "unauthorized", ""},
		{"provider down", `{"filename":"a.png","content_type":"image/png","size":1}`, map[string]string{"X-Test-User": "down"}, 503, "backend_unavailable", ""},
		{"profile not allowed", `{"filename":"a.png","content_type":"image/png","size":1}`, map[string]string{"X-Test-User": "docs-only"}, 403, "forbidden", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{"Content-Type": "application/json"}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			r := h.do("POST", "/v1/uploads", strings.NewReader(tc.body), hdr)
			wantErr(t, r, tc.status, tc.code, tc.field)
			h.assertEmpty()
		})
	}
}

// TestStoreRefusals: the file driver's signed URLs refuse what the grant
// did not allow, and leave nothing behind.
func TestStoreRefusals(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name   string
		send   func(g grant) resp
		status int
	}{
		{"bad signature", func(g grant) resp {
			u, _ := url.Parse(g.Upload.URL)
			q := u.Query()
			for k := range q {
				if v := q.Get(k); len(v) > 20 {
					q.Set(k, strings.Repeat("A", len(v)))
				}
			}
			u.RawQuery = q.Encode()
			return h.do("PUT", u.String(), bytes.NewReader(pngData), g.Upload.Headers)
		}, 403},
		{"wrong method GET", func(g grant) resp { return h.do("GET", g.Upload.URL, nil, nil) }, 403},
		{"wrong method PATCH", func(g grant) resp {
			return h.do("PATCH", g.Upload.URL, bytes.NewReader(pngData), g.Upload.Headers)
		}, 403},
		{"wrong content type", func(g grant) resp {
			hd := map[string]string{}
			for k, v := range g.Upload.Headers {
				hd[k] = v
			}
			hd["Content-Type"] = "image/jpeg"
			return h.do("PUT", g.Upload.URL, bytes.NewReader(pngData), hd)
		}, 403},
		{"one byte over", func(g grant) resp { return h.put(g, append(bytes.Clone(pngData), 0)) }, 413},
		{"chunked over", func(g grant) resp {
			pr, pw := io.Pipe()
			go func() { _, _ = pw.Write(append(bytes.Clone(pngData), 1, 2, 3)); _ = pw.Close() }()
			return h.do("PUT", g.Upload.URL, pr, g.Upload.Headers) // unknown length: chunked
		}, 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := h.create(imageReq(len(pngData)), "")
			if r := tc.send(g); r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			h.assertEmpty()
			wantErr(t, h.postJSON(g.CompleteURL, nil, ""), 409, "not_uploaded", "")
		})
	}
	t.Run("overwrite", func(t *testing.T) {
		g := h.create(imageReq(len(pngData)), "")
		if r := h.put(g, pngData); r.Status != 200 {
			t.Fatalf("put: %d", r.Status)
		}
		if r := h.put(g, pngData); r.Status != http.StatusPreconditionFailed {
			t.Fatalf("overwrite: %d %s", r.Status, r.Body)
		}
		if o := h.objects(); len(o) != 1 || o[0] != g.Key {
			t.Fatalf("objects %v", o)
		}
		if r := h.do("DELETE", "/v1/uploads/"+g.ID, nil, nil); r.Status != 204 {
			t.Fatalf("abort: %d %s", r.Status, r.Body)
		}
		h.assertEmpty()
	})
}

func TestExpiredURL(t *testing.T) {
	h := newHarness(t, func(o *broker.Options) {
		p := o.Config.Profiles["images"]
		p.Expires = time.Second
		o.Config.Profiles["images"] = p
	})
	g := h.create(imageReq(len(pngData)), "")
	// The file driver's clock is the wall clock: wait the URL out.
	time.Sleep(2100 * time.Millisecond)
	if r := h.put(g, pngData); r.Status != 403 {
		t.Fatalf("expired URL: %d %s", r.Status, r.Body)
	}
	h.assertEmpty()
}

func TestHostileFilenames(t *testing.T) {
	h := newHarness(t)
	names := []string{"../../etc/passwd", `a/b\c.png`, "x.php.png", "%2e%2e%2f", "nul\x00.png", strings.Repeat("A", 5000),
		"..", "\u202egnp.exe", "C:\\Windows\\x.PNG", "/abs/path.png"}
	for _, n := range names {
		t.Run(fmt.Sprintf("%.20q", n), func(t *testing.T) {
			g := h.create(map[string]any{"filename": n, "content_type": "image/png", "size": 10}, "../admin")
			if err := policy.CheckKey(g.Key); err != nil {
				t.Fatalf("unsafe key %q: %v", g.Key, err)
			}
			if !strings.HasPrefix(g.Key, "images/_") || strings.Count(g.Key, "/") != 2 {
				t.Fatalf("key %q escapes its folder", g.Key)
			}
			if ext := policy.Extension(n); !strings.HasSuffix(g.Key, "/"+g.Key[len(g.Key)-len(ext)-32:len(g.Key)-len(ext)]+ext) {
				t.Fatalf("key %q does not end in uuid%s", g.Key, ext)
			}
		})
	}
	h.assertEmpty()
}

func TestCompletionRejects(t *testing.T) {
	h := newHarness(t)
	// HTML declared as PNG: the file driver stores it (the type header
	// matches), and completion's sniff must delete it.
	g := h.create(map[string]any{"filename": "x.png", "content_type": "image/png", "size": len(htmlData)}, "")
	if r := h.put(g, htmlData); r.Status != 200 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	if len(h.objects()) != 1 {
		t.Fatal("the object must exist before completion")
	}
	wantErr(t, h.postJSON(g.CompleteURL, nil, ""), 422, "rejected", "content_type")
	h.assertEmpty()
	if ev := h.events.types(); fmt.Sprint(ev) != "[upload.rejected:sniff]" {
		t.Fatalf("events %v", ev)
	}
	// Completing again: nothing is there any more.
	wantErr(t, h.postJSON(g.CompleteURL, nil, ""), 409, "not_uploaded", "")
}

func TestTickets(t *testing.T) {
	h := newHarness(t)
	g := h.create(imageReq(len(pngData)), "alice")
	if r := h.put(g, pngData); r.Status != 200 {
		t.Fatal(r.Status)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(g.ID)
	raw[5] ^= 1
	tampered := base64.RawURLEncoding.EncodeToString(raw)

	later := func(d time.Duration) func(*broker.Options) {
		return func(o *broker.Options) { o.Now = func() time.Time { return time.Now().Add(d) } }
	}
	rotated := func(o *broker.Options) {
		o.TicketKeys = [][]byte{[]byte("a-brand-new-ticket-key-000000000"), ticketKey}
	}
	otherKey := func(o *broker.Options) { o.TicketKeys = [][]byte{[]byte("a-brand-new-ticket-key-000000000")} }
	// Other brokers share the harness's store, as replicas would.
	replica := func(edit func(*broker.Options)) *harness {
		r := newHarness(t, edit)
		r.opts.Backends["local"] = h.local
		b, err := broker.New(r.opts)
		if err != nil {
			t.Fatal(err)
		}
		r.b = b
		return r
	}
	cases := []struct {
		name   string
		b      *broker.Broker
		id     string
		user   string
		status int
		code   string
	}{
		{"tampered", h.b, tampered, "alice", 404, "not_found"},
		{"truncated", h.b, g.ID[:len(g.ID)-3], "alice", 404, "not_found"},
		{"garbage", h.b, "not-a-ticket", "alice", 404, "not_found"},
		{"other principal", h.b, g.ID, "bob", 403, "forbidden"},
		{"anonymous", h.b, g.ID, "", 403, "forbidden"},
		{"unknown key", replica(otherKey).b, g.ID, "alice", 404, "not_found"},
		{"past grace", replica(later(time.Hour + 10*time.Minute)).b, g.ID, "alice", 410, "expired"},
		{"within grace", replica(later(50 * time.Minute)).b, g.ID, "alice", 200, ""},
		{"rotated keys", replica(rotated).b, g.ID, "alice", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, method := range []string{"POST", "DELETE"} {
				if method == "DELETE" && tc.status == 200 {
					continue
				}
				path := "/v1/uploads/" + tc.id
				if method == "POST" {
					path += "/complete"
				}
				req := httptestRequest(method, path, tc.user)
				r := serve(tc.b.Handler(), req)
				if r.Status != tc.status {
					t.Fatalf("%s: %d, want %d: %s", method, r.Status, tc.status, r.Body)
				}
				if tc.code != "" {
					wantErr(t, r, tc.status, tc.code, "")
				}
			}
			if o := h.objects(); len(o) != 1 {
				t.Fatalf("the object must survive refused requests: %v", o)
			}
		})
	}
}

func TestOwnership(t *testing.T) {
	h := newHarness(t)
	g := h.create(imageReq(len(pngData)), "alice")
	h.put(g, pngData)
	h.postJSON(g.CompleteURL, nil, "alice")
	pub := h.create(map[string]any{"filename": "p.png", "content_type": "image/png", "size": len(pngData), "profile": "public"}, "alice")
	h.put(pub, pngData)
	if r := h.postJSON(pub.CompleteURL, nil, "alice"); r.Status != 200 {
		t.Fatal(r.Status)
	}
	cases := []struct {
		name, key, user string
		status          int
		code            string
	}{
		{"owner", g.Key, "alice", 307, ""},
		{"other principal", g.Key, "bob", 403, "forbidden"},
		{"anonymous", g.Key, "", 403, "forbidden"},
		{"bad credential", g.Key, "bad", 401, "unauthorized"},
		{"provider down", g.Key, "down", 503, "backend_unavailable"},
		{"public to others", pub.Key, "bob", 307, ""},
		{"public without credential", pub.Key, "bad", 307, ""},
		{"missing", "images/alice/00000000000000000000000000000000.png", "alice", 404, "not_found"},
		{"missing without credential", "images/alice/00000000000000000000000000000000.png", "bad", 401, "unauthorized"},
		{"dot dot", "images/../etc/passwd", "alice", 400, "invalid_request"},
		{"encoded dot dot", "images/%2e%2e/x", "alice", 400, "invalid_request"},
		{"bad byte", "images/a b", "alice", 400, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("GET", "/v1/downloads/"+tc.key, nil, map[string]string{"X-Test-User": tc.user})
			if r.Status != tc.status {
				t.Fatalf("%d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.code != "" {
				wantErr(t, r, tc.status, tc.code, "-")
			} else if got := h.do("GET", r.Header.Get("Location"), nil, nil); !bytes.Equal(got.Body, pngData) {
				t.Fatalf("signed GET: %d", got.Status)
			}
		})
	}
	// Another principal cannot abort either; the owner can.
	wantErr(t, h.do("DELETE", "/v1/uploads/"+g.ID, nil, map[string]string{"X-Test-User": "bob"}), 403, "forbidden", "")
	if r := h.do("DELETE", "/v1/uploads/"+g.ID, nil, map[string]string{"X-Test-User": "alice"}); r.Status != 204 {
		t.Fatalf("abort: %d %s", r.Status, r.Body)
	}
	if o := h.objects(); len(o) != 1 || o[0] != pub.Key {
		t.Fatalf("after abort: %v", o)
	}
}

func TestMultipart(t *testing.T) {
	h := newHarness(t)
	const size = 10<<20 + 12345
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
	g := h.create(map[string]any{"filename": "big.bin", "content_type": "application/octet-stream", "size": size, "profile": "big"}, "alice")
	if g.Upload != nil || g.Multipart == nil || g.Multipart.PartSize != 1<<20 || g.Multipart.PartCount != 11 || g.Backend != "mem" {
		t.Fatalf("grant %+v %+v", g.Upload, g.Multipart)
	}
	var pr struct {
		Parts []struct {
			Number int
			URL    string
			Size   int64
		}
		PartCount int `json:"part_count"`
	}
	r := h.do("GET", g.Multipart.PartsURL+"?numbers=1-3,11", nil, map[string]string{"X-Test-User": "alice"})
	r.json(t, &pr)
	if r.Status != 200 || len(pr.Parts) != 4 || pr.Parts[3].Number != 11 || pr.Parts[3].Size != size-10<<20 || pr.PartCount != 11 {
		t.Fatalf("parts: %d %s", r.Status, r.Body)
	}
	for _, bad := range []string{"0-2", "1-12", "5-3", "x", "1-200", "1,,2"} {
		wantErr(t, h.do("GET", g.Multipart.PartsURL+"?numbers="+bad, nil, map[string]string{"X-Test-User": "alice"}), 400, "invalid_request", "numbers")
	}
	uploadID := pr.Parts[0].URL[strings.Index(pr.Parts[0].URL, "upload=")+7 : strings.Index(pr.Parts[0].URL, "&")]
	var parts []map[string]any
	for i := 0; i < 11; i++ {
		chunk := data[i<<20 : min(size, (i+1)<<20)]
		parts = append(parts, map[string]any{"number": i + 1, "etag": h.mem.putPart(uploadID, i+1, chunk)})
	}
	// Refusals before assembly.
	wantErr(t, h.postJSON(g.CompleteURL, map[string]any{"parts": parts[:10]}, "alice"), 400, "invalid_request", "parts")
	badEtag := append([]map[string]any{{"number": 1, "etag": "nope"}}, parts[1:]...)
	wantErr(t, h.postJSON(g.CompleteURL, map[string]any{"parts": badEtag}, "alice"), 400, "invalid_request", "parts")
	// Unordered but complete: accepted.
	shuffled := append(append([]map[string]any{}, parts[5:]...), parts[:5]...)
	r = h.postJSON(g.CompleteURL, map[string]any{"parts": shuffled}, "alice")
	if r.Status != 200 {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	if got, _ := h.mem.ReadRange(t.Context(), g.Key, 0, size); !bytes.Equal(got, data) {
		t.Fatal("assembled object differs")
	}
	if r2 := h.postJSON(g.CompleteURL, map[string]any{"parts": parts}, "alice"); r2.Status != 200 || !bytes.Equal(r2.Body, r.Body) {
		t.Fatalf("second completion: %d %s", r2.Status, r2.Body)
	}
	// Abort of another upload drops its parts.
	g2 := h.create(map[string]any{"filename": "big.bin", "content_type": "application/octet-stream", "size": size, "profile": "big"}, "alice")
	if r := h.do("DELETE", "/v1/uploads/"+g2.ID, nil, map[string]string{"X-Test-User": "alice"}); r.Status != 204 {
		t.Fatalf("abort: %d", r.Status)
	}
	wantErr(t, h.postJSON(g2.CompleteURL, map[string]any{"parts": parts}, "alice"), 409, "not_uploaded", "")
}

func TestMultipartSizeMismatch(t *testing.T) {
	h := newHarness(t)
	size := 11 << 20
	g := h.create(map[string]any{"filename": "big.bin", "content_type": "application/octet-stream", "size": size, "profile": "big"}, "")
	h.mem.mu.Lock()
	var id string
	for k := range h.mem.uploads {
		id = k
	}
	h.mem.mu.Unlock()
	var parts []map[string]any
	for i := 1; i <= 11; i++ {
		parts = append(parts, map[string]any{"number": i, "etag": h.mem.putPart(id, i, make([]byte, 1<<20-1))})
	}
	wantErr(t, h.postJSON(g.CompleteURL, map[string]any{"parts": parts}, ""), 422, "rejected", "size")
	if _, err := h.mem.ListParts(t.Context(), g.Key, id); err == nil {
		t.Fatal("a rejected multipart upload must be aborted")
	}
}

func TestBackendUnavailable(t *testing.T) {
	h := newHarness(t)
	h.mem.fail = fmt.Errorf("mem: %w: connection refused", drivers.ErrUnavailable)
	r := h.postJSON("/v1/uploads", map[string]any{"filename": "b", "content_type": "application/octet-stream", "size": 1, "profile": "big"}, "")
	wantErr(t, r, 503, "backend_unavailable", "")
	if !strings.Contains(r.err(t).Error.Message, "mem") || strings.Contains(r.err(t).Error.Message, "refused") {
		t.Fatalf("message must name the backend and not leak details: %s", r.Body)
	}
	r = h.do("GET", "/readyz", nil, nil)
	wantErr(t, r, 503, "backend_unavailable", "")
	if !strings.Contains(r.err(t).Error.Message, "mem") || strings.Contains(r.err(t).Error.Message, "local") {
		t.Fatalf("readyz must name only the failing backend: %s", r.Body)
	}
}

func TestRateLimit(t *testing.T) {
	cases := []struct {
		name    string
		lim     ratelimit.Limiter
		onError string
		status  int
		code    string
		retry   string
	}{
		{"refused", fixedLimiter{d: ratelimit.Decision{RetryAfter: 1500 * time.Millisecond, Reason: "grants"}}, "", 429, "rate_limited", "2"},
		{"quota", fixedLimiter{d: ratelimit.Decision{RetryAfter: time.Hour, Reason: "bytes"}}, "", 429, "rate_limited", "3600"},
		{"store down, deny", fixedLimiter{err: errStore}, "deny", 503, "backend_unavailable", ""},
		{"store down, default", fixedLimiter{err: errStore}, "", 503, "backend_unavailable", ""},
		{"store down, allow", fixedLimiter{err: errStore}, "allow", 201, "", ""},
		{"allowed", fixedLimiter{d: ratelimit.Decision{Allowed: true}}, "", 201, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(o *broker.Options) { o.Limiter = tc.lim; o.Config.RateLimit.OnStoreError = tc.onError })
			r := h.postJSON("/v1/uploads", imageReq(10), "")
			if r.Status != tc.status || r.Header.Get("Retry-After") != tc.retry {
				t.Fatalf("%d Retry-After %q: %s", r.Status, r.Header.Get("Retry-After"), r.Body)
			}
			if tc.code != "" {
				wantErr(t, r, tc.status, tc.code, "")
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
		check              func(resp) string
	}{
		{"healthz", "GET", "/healthz", nil, 200, nil},
		{"readyz", "GET", "/readyz", nil, 200, nil},
		{"openapi", "GET", "/openapi.json", nil, 200, func(r resp) string { return r.Header.Get("Content-Type") }},
		{"client.js", "GET", "/v1/client.js", nil, 200, func(r resp) string {
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") {
				return "content type " + r.Header.Get("Content-Type")
			}
			return ""
		}},
		{"client.d.ts", "GET", "/v1/client.d.ts", nil, 200, nil},
		{"demo page", "GET", "/", nil, 200, nil},
		{"metrics without Metrics", "GET", "/metrics", nil, 404, nil},
		{"unknown route", "GET", "/nope", nil, 404, func(r resp) string { return codeIs(r, "not_found") }},
		{"wrong method", "PUT", "/v1/uploads", nil, 405, func(r resp) string { return codeIs(r, "method_not_allowed") }},
		{"request id kept", "GET", "/healthz", map[string]string{"X-Request-ID": "abc-123"}, 200, func(r resp) string {
			if r.Header.Get("X-Request-ID") != "abc-123" {
				return "request id not echoed"
			}
			return ""
		}},
		{"request id replaced", "GET", "/healthz", map[string]string{"X-Request-ID": "bad id\t<script>"}, 200, func(r resp) string {
			if id := r.Header.Get("X-Request-ID"); len(id) != 24 {
				return "request id " + id
			}
			return ""
		}},
		{"cors preflight", "OPTIONS", "/v1/uploads", map[string]string{"Origin": "http://app.example", "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization,content-type,x-api-key,x-request-id"}, 204, func(r resp) string {
			if r.Header.Get("Access-Control-Allow-Origin") != "http://app.example" || !strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "authorization") {
				return fmt.Sprint(r.Header)
			}
			return ""
		}},
		// Every method and credential header of the API passes a
		// preflight: the browser client aborts with DELETE, and sends
		// X-API-Key when it is given one.
		{"cors preflight for DELETE with X-API-Key", "OPTIONS", "/v1/uploads/abc", map[string]string{"Origin": "http://app.example", "Access-Control-Request-Method": "DELETE",
			"Access-Control-Request-Headers": "x-api-key"}, 204, func(r resp) string {
			methods := strings.ToUpper(r.Header.Get("Access-Control-Allow-Methods"))
			headers := strings.ToLower(r.Header.Get("Access-Control-Allow-Headers"))
			for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
				if !strings.Contains(methods, m) {
					return "preflight does not allow " + m + ": " + fmt.Sprint(r.Header)
				}
			}
			if !strings.Contains(headers, "x-api-key") || r.Header.Get("Access-Control-Allow-Credentials") != "" {
				return fmt.Sprint(r.Header)
			}
			return ""
		}},
		{"cors on a simple GET", "GET", "/healthz", map[string]string{"Origin": "http://app.example"}, 200, func(r resp) string {
			if r.Header.Get("Access-Control-Allow-Origin") != "http://app.example" || !strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Expose-Headers")), "x-request-id") {
				return fmt.Sprint(r.Header)
			}
			return ""
		}},
		{"cors other origin", "OPTIONS", "/v1/uploads", map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}, 403, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.method, tc.path, nil, tc.hdr)
			if r.Status != tc.status {
				t.Fatalf("%d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.check != nil {
				if msg := tc.check(r); msg != "" && !strings.HasPrefix(msg, "application/json") {
					t.Fatal(msg)
				}
			}
		})
	}
	h.b.Drain()
	wantErr(t, h.do("GET", "/readyz", nil, nil), 503, "backend_unavailable", "")
	if r := h.do("GET", "/healthz", nil, nil); r.Status != 200 {
		t.Fatal("healthz must stay up while draining")
	}
}

func TestNewRefuses(t *testing.T) {
	cases := []struct {
		name string
		edit func(*broker.Options)
		want string
	}{
		{"no ticket keys", func(o *broker.Options) { o.TicketKeys = nil }, "secrets.ticket_keys"},
		{"short key", func(o *broker.Options) { o.TicketKeys = [][]byte{[]byte("short")} }, "secrets.ticket_keys"},
		{"cors star with credentials", func(o *broker.Options) {
			o.Config.Server.CORS = config_CORS([]string{"*"}, true)
		}, "server.cors"},
		{"bad public url", func(o *broker.Options) { o.Config.Server.PublicURL = "ftp://x" }, "server.public_url"},
		{"post on a backend without POST", func(o *broker.Options) {
			p := o.Config.Profiles["big"]
			p.Method = "post"
			o.Config.Profiles["big"] = p
		}, "profiles.big.method"},
		{"unknown default", func(o *broker.Options) { o.Config.DefaultProfile = "nope" }, "default_profile"},
	}
	h := newHarness(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := h.opts
			cfg := *testConfig()
			o.Config = &cfg
			o.TicketKeys = [][]byte{ticketKey}
			tc.edit(&o)
			_, err := broker.New(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestTicketDeriveMatchesFileDriver(t *testing.T) {
	// The harness signs file-driver URLs with ticket.Derive; a different
	// derivation must not verify.
	if bytes.Equal(ticket.Derive(ticketKey, "backend:local"), ticket.Derive(ticketKey, "backend:mem")) {
		t.Fatal("per-backend keys must differ")
	}
}

func BenchmarkCreateUpload(b *testing.B) {
	h := newHarness(b)
	body := []byte(`{"filename":"cat.png","content_type":"image/png","size":48213,"metadata":{"album":"x"}}`)
	handler := h.b.Handler()
	b.ReportAllocs()
	for b.Loop() {
		r := serve(handler, httptestRequestBody("POST", "/v1/uploads", body))
		if r.Status != 201 {
			b.Fatalf("%d %s", r.Status, r.Body)
		}
	}
}
