package apitest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/upbroker/upbroker/broker/openapi"
	"github.com/upbroker/upbroker/internal/apitest"
)

func TestDocumentLoadsAndValidates(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Every route of the API contract must be described.
	want := map[string][]string{
		"/v1/uploads":                           {"POST"},
		"/v1/uploads/{id}/parts":                {"GET"},
		"/v1/uploads/{id}/complete":             {"POST"},
		"/v1/uploads/{id}":                      {"DELETE"},
		"/v1/downloads/{key}":                   {"GET"},
		"/v1/blob/{backend}/{key}":              {"PUT", "POST", "GET", "HEAD"},
		"/v1/client.js":                         {"GET"},
		"/v1/client.d.ts":                       {"GET"},
		"/":                                     {"GET"},
		"/demo/{file}":                          {"GET"},
		"/healthz":                              {"GET"},
		"/readyz":                               {"GET"},
		"/metrics":                              {"GET"},
		"/openapi.json":                         {"GET"},
		"/s3/params":                            {"GET"},
		"/s3/multipart":                         {"POST"},
		"/s3/multipart/{uploadId}":              {"GET", "DELETE"},
		"/s3/multipart/{uploadId}/batch":        {"GET"},
		"/s3/multipart/{uploadId}/complete":     {"POST"},
		"/s3/multipart/{uploadId}/{partNumber}": {"GET"},
	}
	for path, methods := range want {
		item := doc.Paths.Value(path)
		if item == nil {
			t.Errorf("path %s is not documented", path)
			continue
		}
		for _, m := range methods {
			if item.GetOperation(m) == nil {
				t.Errorf("%s %s is not documented", m, path)
			}
		}
	}
	// The error shape is shared by every v1 operation and lists every
	// status of the contract.
	for _, status := range []string{"400", "401", "403", "404", "413", "415", "429", "500", "503"} {
		if doc.Paths.Value("/v1/uploads").Post.Responses.Value(status) == nil {
			t.Errorf("POST /v1/uploads does not document %s", status)
		}
	}
	for _, status := range []string{"409", "410", "422"} {
		if doc.Paths.Value("/v1/uploads/{id}/complete").Post.Responses.Value(status) == nil {
			t.Errorf("POST /v1/uploads/{id}/complete does not document %s", status)
		}
	}
	for _, name := range []string{"bearerAuth", "apiKeyHeader"} {
		if doc.Components.SecuritySchemes[name] == nil {
			t.Errorf("security scheme %s missing", name)
		}
	}
}

// fakeT records what the validator reports instead of failing the test.
type fakeT struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	f.TB.FailNow()
}
func (f *fakeT) reported() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.errs...)
}

const grant = `{"id":"tk1","key":"images/u-1/0f3c.png","backend":"local","profile":"images",
 "expires_at":"2026-11-27T10:05:00Z",
 "upload":{"method":"PUT","url":"http://127.0.0.1:8080/v1/blob/local/images/u-1/0f3c.png?sig=x","headers":{"Content-Type":"image/png"},"fields":null},
 "multipart":null,
 "enforced":{"size":"signature","content_type":"signature","checksum":"after_upload","overwrite":"signature"},
 "complete_url":"http://127.0.0.1:8080/v1/uploads/tk1/complete"}`

const validCreate = `{"filename":"cat.png","content_type":"image/png","size":48213,"metadata":{"album":"x"}}`

type answer struct {
	status int
	header map[string]string
	body   string
}

func TestValidation(t *testing.T) {
	jsonCT := map[string]string{"Content-Type": "application/json; charset=utf-8"}
	tests := []struct {
		name    string
		method  string
		path    string
		reqHdr  map[string]string
		reqBody string
		answer  answer
		wantErr string // "" means the exchange matches the document
	}{
		{"grant ok", "POST", "/v1/uploads", jsonCT, validCreate,
			answer{201, jsonCT, grant}, ""},
		{"grant without enforced", "POST", "/v1/uploads", jsonCT, validCreate,
			answer{201, jsonCT, strings.Replace(grant, `"enforced"`, `"enforcement"`, 1)}, "does not match"},
		{"multipart grant ok", "POST", "/v1/uploads", jsonCT, validCreate,
			answer{201, jsonCT, strings.Replace(strings.Replace(grant,
				`{"method":"PUT","url":"http://127.0.0.1:8080/v1/blob/local/images/u-1/0f3c.png?sig=x","headers":{"Content-Type":"image/png"},"fields":null}`, "null", 1),
				`"multipart":null`, `"multipart":{"part_size":5242880,"part_count":4,"parts_url":"http://127.0.0.1:8080/v1/uploads/tk1/parts"}`, 1)}, ""},
		{"invalid request refused", "POST", "/v1/uploads", jsonCT, `{"content_type":"image/png","size":1}`,
			answer{400, jsonCT, `{"error":{"code":"invalid_request","message":"filename is required","field":"filename"}}`}, ""},
		{"unknown field refused", "POST", "/v1/uploads", jsonCT, `{"filename":"a.png","content_type":"image/png","size":1,"colour":"red"}`,
			answer{400, jsonCT, `{"error":{"code":"invalid_request","message":"unknown field","field":"colour"}}`}, ""},
		{"invalid request accepted", "POST", "/v1/uploads", jsonCT, `{"content_type":"image/png","size":1}`,
			answer{201, jsonCT, grant}, "accepted a request the document forbids"},
		{"error body of the wrong shape", "POST", "/v1/uploads", jsonCT, validCreate,
			answer{400, jsonCT, `{"error":"bad request"}`}, "does not match"},
		{"error code not in the contract", "POST", "/v1/uploads", jsonCT, validCreate,
			answer{400, jsonCT, `{"error":{"code":"oops","message":"x"}}`}, "does not match"},
		{"rate limited", "POST", "/v1/uploads", jsonCT, validCreate,
			answer{429, map[string]string{"Content-Type": "application/json", "Retry-After": "3"}, `{"error":{"code":"rate_limited","message":"slow down"}}`}, ""},
		{"undocumented status", "POST", "/v1/uploads", jsonCT, validCreate,
			answer{418, jsonCT, `{"error":{"code":"internal","message":"teapot"}}`}, "not documented"},
		{"parts ok", "GET", "/v1/uploads/tk1/parts?numbers=1-2", nil, "",
			answer{200, jsonCT, `{"parts":[{"number":1,"method":"PUT","url":"http://s/p1","headers":null,"size":5},{"number":2,"method":"PUT","url":"http://s/p2","headers":{},"size":3}],"part_count":2,"expires_at":"2026-11-27T10:05:00Z"}`}, ""},
		{"parts bad numbers refused", "GET", "/v1/uploads/tk1/parts?numbers=one", nil, "",
			answer{400, jsonCT, `{"error":{"code":"invalid_request","message":"bad numbers","field":"numbers"}}`}, ""},
		{"parts bad numbers accepted", "GET", "/v1/uploads/tk1/parts?numbers=one", nil, "",
			answer{200, jsonCT, `{"parts":[],"part_count":2,"expires_at":"2026-11-27T10:05:00Z"}`}, "document forbids"},
		{"complete ok, empty body", "POST", "/v1/uploads/tk1/complete", nil, "",
			answer{200, jsonCT, `{"key":"images/u-1/0f3c.png","size":48213,"content_type":"image/png","etag":"abc","url":"http://127.0.0.1:8080/v1/downloads/images/u-1/0f3c.png"}`}, ""},
		{"complete multipart ok", "POST", "/v1/uploads/tk1/complete", jsonCT, `{"parts":[{"number":1,"etag":"\"abc\""}]}`,
			answer{200, jsonCT, `{"key":"k","size":1,"content_type":"image/png","url":"http://x/y"}`}, ""},
		{"complete not uploaded", "POST", "/v1/uploads/tk1/complete", jsonCT, `{}`,
			answer{409, jsonCT, `{"error":{"code":"not_uploaded","message":"nothing at the key yet"}}`}, ""},
		{"complete rejected", "POST", "/v1/uploads/tk1/complete", jsonCT, `{}`,
			answer{422, jsonCT, `{"error":{"code":"rejected","message":"not a PNG","field":"content_type"}}`}, ""},
		{"complete answer missing size", "POST", "/v1/uploads/tk1/complete", jsonCT, `{}`,
			answer{200, jsonCT, `{"key":"k","content_type":"image/png","url":"http://x/y"}`}, "does not match"},
		{"abort", "DELETE", "/v1/uploads/tk1", nil, "", answer{204, nil, ""}, ""},
		{"download json, key with slashes", "GET", "/v1/downloads/images/u-1/a%20b.png", map[string]string{"Accept": "application/json"}, "",
			answer{200, jsonCT, `{"url":"http://s/x","expires_at":"2026-11-27T10:05:00Z"}`}, ""},
		{"download redirect", "GET", "/v1/downloads/images/u-1/a.png", nil, "",
			answer{307, map[string]string{"Location": "http://s/x"}, ""}, ""},
		{"download redirect without Location", "GET", "/v1/downloads/images/u-1/a.png", nil, "",
			answer{307, nil, ""}, "Location"},
		{"blob put", "PUT", "/v1/blob/local/images/u-1/a.png?sig=x", map[string]string{"Content-Type": "image/png"}, "\x89PNG\r\n\x1a\n",
			answer{200, map[string]string{"ETag": `"abc"`}, ""}, ""},
		{"blob put exists", "PUT", "/v1/blob/local/images/u-1/a.png?sig=x", map[string]string{"Content-Type": "image/png"}, "\x89PNG",
			answer{412, jsonCT, `{"error":{"code":"exists","message":"already there"}}`}, ""},
		{"blob get", "GET", "/v1/blob/local/images/u-1/a.png?sig=x", nil, "",
			answer{200, map[string]string{"Content-Type": "image/png"}, "\x89PNG"}, ""},
		{"healthz", "GET", "/healthz", nil, "", answer{200, jsonCT, `{"status":"ok"}`}, ""},
		{"readyz not ready", "GET", "/readyz", nil, "",
			answer{503, jsonCT, `{"error":{"code":"backend_unavailable","message":"backend not ready: minio"}}`}, ""},
		{"readyz plain text error", "GET", "/readyz", nil, "",
			answer{503, map[string]string{"Content-Type": "text/plain"}, "not ready"}, "does not match"},
		{"metrics", "GET", "/metrics", nil, "",
			answer{200, map[string]string{"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}, "# HELP x y\nx 1\n"}, ""},
		{"demo asset in a folder", "GET", "/demo/js/app.js", nil, "",
			answer{200, map[string]string{"Content-Type": "text/javascript"}, "export {}"}, ""},
		{"companion batch", "GET", "/s3/multipart/up1/batch?key=k&partNumbers=1,2", nil, "",
			answer{200, jsonCT, `{"presignedUrls":{"1":"http://s/1","2":"http://s/2"}}`}, ""},
		{"companion one part", "GET", "/s3/multipart/up1/3?key=k", nil, "",
			answer{200, jsonCT, `{"url":"http://s/3","expires":300}`}, ""},
		{"companion error", "GET", "/s3/multipart/up1/3?key=k", nil, "",
			answer{403, jsonCT, `{"error":"not your upload","message":"not your upload"}`}, ""},
		{"companion error without message", "GET", "/s3/multipart/up1/3?key=k", nil, "",
			answer{403, jsonCT, `{"error":"not your upload"}`}, "message"},
		{"companion unknown route in its shape", "GET", "/s3/nope", nil, "",
			answer{404, jsonCT, `{"error":"no such route","message":"no such route"}`}, ""},
		{"companion wrong method in the v1 shape", "PUT", "/s3/params", nil, "",
			answer{405, jsonCT, `{"error":{"code":"method_not_allowed","message":"no"}}`}, "/s3 error"},
		{"companion wrong method", "PUT", "/s3/params", nil, "",
			answer{405, jsonCT, `{"error":"method PUT is not allowed here","message":"method PUT is not allowed here"}`}, ""},
		{"unknown route 404", "GET", "/v1/nothing/here", nil, "",
			answer{404, jsonCT, `{"error":{"code":"not_found","message":"no such route"}}`}, ""},
		{"unknown route answered", "GET", "/v1/nothing/here", nil, "",
			answer{200, jsonCT, `{}`}, "no such operation"},
		{"wrong method 405", "PATCH", "/v1/uploads", nil, "",
			answer{405, jsonCT, `{"error":{"code":"method_not_allowed","message":"no"}}`}, ""},
		{"wrong method with a text body", "PATCH", "/v1/uploads", nil, "",
			answer{405, map[string]string{"Content-Type": "text/plain"}, "405 method not allowed"}, "must be JSON"},
		{"cors preflight passes", "OPTIONS", "/v1/uploads", map[string]string{"Origin": "http://a", "Access-Control-Request-Method": "POST"}, "",
			answer{204, nil, ""}, ""},
	}
	for _, tc := range tests {
		var gotBody []byte
		handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotBody, _ = io.ReadAll(r.Body)
			for k, v := range tc.answer.header {
				w.Header().Set(k, v)
			}
			w.WriteHeader(tc.answer.status)
			_, _ = io.WriteString(w, tc.answer.body)
		})
		send := func(t *testing.T, client *http.Client, base string) {
			req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.reqBody))
			if err != nil {
				t.Fatal(err)
			}
			if tc.reqBody == "" {
				req.Body, req.ContentLength = http.NoBody, 0
			}
			for k, v := range tc.reqHdr {
				req.Header.Set(k, v)
			}
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// The checks must not change what the client and the handler see.
			if resp.StatusCode != tc.answer.status || (tc.method != "HEAD" && string(body) != tc.answer.body) {
				t.Errorf("client got %d %q, want %d %q", resp.StatusCode, body, tc.answer.status, tc.answer.body)
			}
			if string(gotBody) != tc.reqBody {
				t.Errorf("handler got body %q, want %q", gotBody, tc.reqBody)
			}
		}
		verdict := func(t *testing.T, ft *fakeT) {
			errs := ft.reported()
			switch {
			case tc.wantErr == "" && len(errs) > 0:
				t.Errorf("want no mismatch, got %q", errs)
			case tc.wantErr != "" && (len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), tc.wantErr)):
				t.Errorf("want a mismatch mentioning %q, got %q", tc.wantErr, errs)
			case len(errs) > 0:
				t.Logf("reported as expected: %q", errs)
			}
		}
		t.Run("wrap/"+tc.name, func(t *testing.T) {
			ft := &fakeT{TB: t}
			srv := httptest.NewServer(apitest.Wrap(ft, handler))
			defer srv.Close()
			send(t, srv.Client(), srv.URL)
			verdict(t, ft)
		})
		t.Run("transport/"+tc.name, func(t *testing.T) {
			ft := &fakeT{TB: t}
			srv := httptest.NewServer(handler)
			defer srv.Close()
			send(t, &http.Client{Transport: apitest.Transport(ft, srv.Client().Transport)}, srv.URL)
			verdict(t, ft)
		})
	}
}

// A client that follows a grant to a store sends requests the document
// does not describe; Transport lets them through unchecked.
func TestTransportIgnoresOtherServers(t *testing.T) {
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "<xml/>")
	}))
	defer store.Close()
	ft := &fakeT{TB: t}
	client := &http.Client{Transport: apitest.Transport(ft, nil)}
	resp, err := client.Post(store.URL+"/uploads/images/u-1/a.png", "image/png", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if errs := ft.reported(); len(errs) > 0 {
		t.Fatalf("store traffic was checked: %q", errs)
	}
}
