package apitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/upbroker/upbroker/broker"
	"github.com/upbroker/upbroker/broker/ticket"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	_ "github.com/upbroker/upbroker/drivers/file"
	"github.com/upbroker/upbroker/internal/apitest"
	"github.com/upbroker/upbroker/metrics"
)

var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

// The real broker, with the real file driver, answers as the document
// says: every exchange below goes through apitest.Wrap, which fails the
// test on any mismatch. The assertions here only drive the flow.
func TestBrokerMatchesDocument(t *testing.T) {
	key := []byte("apitest-ticket-key-0123456789abcdef")
	var handler atomic.Pointer[http.Handler]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	d, err := drivers.Open(context.Background(), "file", drivers.Settings{"path": t.TempDir()}, drivers.Env{
		Backend: "local", BaseURL: srv.URL, SigningKey: ticket.Derive(key, "backend:local"),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Server: config.Server{PublicURL: srv.URL, DemoPage: true},
		Profiles: map[string]config.Profile{
			"images": {Backend: "local", ContentTypes: []string{"image/png"}, MaxSize: 1 << 20, Key: "images/{principal}/{uuid}{ext}", Sniff: true},
			"form":   {Backend: "local", ContentTypes: []string{"text/plain"}, MaxSize: 1 << 10, Key: "form/{uuid}{ext}", Method: "post"},
		},
		DefaultProfile: "images",
	}
	b, err := broker.New(broker.Options{
		Config: cfg, Backends: map[string]drivers.Driver{"local": d}, TicketKeys: [][]byte{key},
		Metrics: metrics.New(), Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	h := apitest.Wrap(t, b.Handler())
	handler.Store(&h)

	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, url string, body io.Reader, hdr map[string]string) (int, http.Header, []byte) {
		t.Helper()
		if strings.HasPrefix(url, "/") {
			url = srv.URL + url
		}
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, out
	}
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	type grantT struct {
		ID     string `json:"id"`
		Key    string `json:"key"`
		Upload *struct {
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
			Fields  map[string]string `json:"fields"`
		} `json:"upload"`
		CompleteURL string `json:"complete_url"`
	}
	grant := func(body string) grantT {
		t.Helper()
		status, _, out := do("POST", "/v1/uploads", strings.NewReader(body), jsonHdr)
		if status != http.StatusCreated {
			t.Fatalf("grant: %d %s", status, out)
		}
		var g grantT
		if err := json.Unmarshal(out, &g); err != nil {
			t.Fatal(err)
		}
		return g
	}

	for _, path := range []string{"/healthz", "/readyz", "/openapi.json", "/metrics", "/v1/client.js", "/v1/client.d.ts", "/"} {
		if status, _, out := do("GET", path, nil, nil); status != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, status, out)
		}
	}

	// A PUT upload, start to end.
	g := grant(`{"filename":"cat.png","content_type":"image/png","size":` + itoa(len(png)) + `}`)
	if status, _, out := do("POST", g.CompleteURL, nil, nil); status != http.StatusConflict {
		t.Errorf("complete before upload: %d %s", status, out)
	}
	if status, _, out := do(g.Upload.Method, g.Upload.URL, bytes.NewReader(png), g.Upload.Headers); status/100 != 2 {
		t.Fatalf("upload: %d %s", status, out)
	}
	if status, _, out := do("POST", g.CompleteURL, strings.NewReader(`{}`), jsonHdr); status != http.StatusOK {
		t.Fatalf("complete: %d %s", status, out)
	}
	if status, _, out := do("GET", "/v1/downloads/"+g.Key, nil, map[string]string{"Accept": "application/json"}); status != http.StatusOK {
		t.Errorf("download json: %d %s", status, out)
	}
	status, hdr, _ := do("GET", "/v1/downloads/"+g.Key, nil, nil)
	if status != http.StatusTemporaryRedirect {
		t.Fatalf("download: %d", status)
	}
	if status, _, out := do("GET", hdr.Get("Location"), nil, nil); status != http.StatusOK || !bytes.Equal(out, png) {
		t.Errorf("read back: %d, %d bytes", status, len(out))
	}

	// A POST-form upload.
	f := grant(`{"filename":"a.txt","content_type":"text/plain","size":5,"profile":"form"}`)
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	for k, v := range f.Upload.Fields {
		_ = mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", "a.txt")
	_, _ = fw.Write([]byte("hello"))
	_ = mw.Close()
	if status, _, out := do("POST", f.Upload.URL, &form, map[string]string{"Content-Type": mw.FormDataContentType()}); status/100 != 2 {
		t.Errorf("form upload: %d %s", status, out)
	}
	if status, _, out := do("DELETE", "/v1/uploads/"+f.ID, nil, nil); status != http.StatusNoContent {
		t.Errorf("abort: %d %s", status, out)
	}

	// Errors, each checked against the document's error responses.
	errorCases := []struct {
		method, path, body string
		hdr                map[string]string
		want               int
	}{
		{"POST", "/v1/uploads", `{"content_type":"image/png","size":1}`, jsonHdr, 400},
		{"POST", "/v1/uploads", `{"filename":"a.gif","content_type":"image/gif","size":1}`, jsonHdr, 415},
		{"POST", "/v1/uploads", `{"filename":"a.png","content_type":"image/png","size":99999999}`, jsonHdr, 413},
		{"POST", "/v1/uploads", `{"filename":"a.png","content_type":"image/png","size":1,"colour":"red"}`, jsonHdr, 400},
		{"POST", "/v1/uploads", `filename=a.png`, map[string]string{"Content-Type": "text/plain"}, 415},
		{"POST", "/v1/uploads/not-a-ticket/complete", `{}`, jsonHdr, 0},
		{"GET", "/v1/uploads/not-a-ticket/parts?numbers=1-2", "", nil, 0},
		{"GET", "/v1/downloads/images/nobody/none.png", "", nil, 0},
		{"GET", "/v1/nothing", "", nil, 404},
		{"PATCH", "/v1/uploads", "", nil, 405},
		{"PUT", g.Upload.URL, string(png), g.Upload.Headers, 0},
	}
	for _, tc := range errorCases {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		status, _, out := do(tc.method, tc.path, body, tc.hdr)
		if status < 400 || (tc.want != 0 && status != tc.want) {
			t.Errorf("%s %s: %d %s, want an error %d", tc.method, tc.path, status, out, tc.want)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
