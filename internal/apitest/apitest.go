// Package apitest checks real HTTP traffic against upbroker's OpenAPI
// document (broker/openapi/openapi.json), so that the document cannot
// drift from the code: every end-to-end test that sends its requests
// through Wrap or Transport also proves that the document describes them.
//
// The rules, for each request:
//
//   - A request to a documented route that the document says is valid
//     must get a documented status, and a body and headers that match it.
//   - A request that the document says is invalid (a missing field, a bad
//     query parameter) must be refused with a documented 4xx whose body
//     matches; a 2xx means the server accepts what the document forbids.
//     Tests may therefore send bad input on purpose.
//   - A request to an undocumented path or method must get 404 or 405
//     with the API's error body, or, under a first path segment whose
//     documented routes all answer 404 in another shape (the Companion
//     routes under /s3), with that shape.
//   - CORS preflights (OPTIONS with Access-Control-Request-Method) are
//     not described by the document and pass unchecked.
//
// Paths whose last parameter is marked `x-upbroker-rest: true` (the
// `{key...}` of downloads and blob URLs) take the rest of the path,
// slashes included. The router (gorilla/mux, as kin-openapi uses it)
// matches one segment per parameter, so before routing the remaining
// segments are joined with an escaped slash (%2F); the parameter is then
// validated with its real, unescaped value.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/upbroker/upbroker/broker/openapi"
)

// maxCapture bounds how much of a response Wrap keeps to validate; a
// larger body (a big download) is passed on whole but only its status
// and headers are checked.
const maxCapture = 8 << 20

// Validator checks requests and responses against one document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	rest   []restPath
	errSch *openapi3.Schema
	// prefixErr is the error schema of a first path segment whose
	// documented operations all answer 404 with a schema other than
	// Error (the Companion routes under /s3 answer in Companion's shape,
	// unknown routes and methods there included).
	prefixErr map[string]*openapi3.Schema
}

// restPath is a path template whose last parameter takes the rest of the
// path.
type restPath struct {
	segs []string // template segments; "{x}" for a parameter
}

var (
	loadOnce sync.Once
	shared   *Validator
	loadErr  error
)

// Load parses and validates the embedded document once per test binary.
func Load() (*Validator, error) {
	loadOnce.Do(func() { shared, loadErr = New(openapi.Spec) })
	return shared, loadErr
}

// New builds a Validator from an OpenAPI 3.0 document.
func New(spec []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("load openapi document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi document is invalid: %w", err)
	}
	// Servers would make the router match hosts; the broker's own host
	// varies from test to test, so route on the path alone.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	v := &Validator{doc: doc, router: router}
	if s := doc.Components.Schemas["Error"]; s != nil {
		v.errSch = s.Value
	} else {
		return nil, errors.New("openapi document has no components.schemas.Error")
	}
	v.prefixErr = prefixErrorSchemas(doc, v.errSch)
	for path, item := range doc.Paths.Map() {
		segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
		last := segs[len(segs)-1]
		if !strings.HasPrefix(last, "{") {
			continue
		}
		name := strings.Trim(last, "{}")
		if isRest(item, name) {
			v.rest = append(v.rest, restPath{segs: segs})
		}
	}
	return v, nil
}

// prefixErrorSchemas finds the first path segments whose operations
// agree on a 404 schema of their own.
func prefixErrorSchemas(doc *openapi3.T, def *openapi3.Schema) map[string]*openapi3.Schema {
	found := map[string]*openapi3.Schema{}
	mixed := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		seg := firstSegment(path)
		for _, op := range item.Operations() {
			var sch *openapi3.Schema
			if r := op.Responses.Status(http.StatusNotFound); r != nil && r.Value != nil {
				if mt := r.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil {
					sch = mt.Schema.Value
				}
			}
			if prev, ok := found[seg]; ok && prev != sch {
				mixed[seg] = true
			}
			found[seg] = sch
		}
	}
	out := map[string]*openapi3.Schema{}
	for seg, sch := range found {
		if !mixed[seg] && sch != nil && sch != def && seg != "" {
			out[seg] = sch
		}
	}
	return out
}

func firstSegment(path string) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return seg
}

func isRest(item *openapi3.PathItem, name string) bool {
	check := func(ps openapi3.Parameters) bool {
		for _, p := range ps {
			if p.Value != nil && p.Value.In == "path" && p.Value.Name == name && p.Value.Extensions["x-upbroker-rest"] == true {
				return true
			}
		}
		return false
	}
	if check(item.Parameters) {
		return true
	}
	for _, op := range item.Operations() {
		if check(op.Parameters) {
			return true
		}
	}
	return false
}

// Doc is the loaded document.
func (v *Validator) Doc() *openapi3.T { return v.doc }

// Wrap serves h and checks every request it gets and every answer it
// gives against the document, failing t on a mismatch.
func Wrap(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	v := mustLoad(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ex, body, err := v.prepare(r, true)
		if err != nil {
			t.Errorf("apitest: %s %s: read request: %v", r.Method, r.URL.Path, err)
			http.Error(w, "apitest: cannot read request", http.StatusInternalServerError)
			return
		}
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		if ex == nil {
			return
		}
		respBody := append([]byte{}, rec.buf.Bytes()...)
		if rec.truncated {
			respBody = nil // too big to keep: check status and headers only
		}
		for _, msg := range v.check(ex, rec.status, w.Header(), respBody) {
			t.Errorf("apitest: %s", msg)
		}
	})
}

// Transport sends requests with base (http.DefaultTransport when nil) and
// checks each exchange with a documented route, or under /v1/, against
// the document, failing t on a mismatch. Other requests (to a store, say)
// pass unchecked, so one client can follow a grant to the store.
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	t.Helper()
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{t: t, v: mustLoad(t), base: base}
}

type transport struct {
	t    testing.TB
	v    *Validator
	base http.RoundTripper
}

func (tr *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ex, body, err := tr.v.prepare(r, false)
	if err != nil {
		return nil, fmt.Errorf("apitest: read request body: %w", err)
	}
	if body != nil {
		// RoundTrip must not change the caller's request: send a copy.
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := tr.base.RoundTrip(r)
	if err != nil || ex == nil {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("apitest: read response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	for _, msg := range tr.v.check(ex, resp.StatusCode, resp.Header, respBody) {
		tr.t.Errorf("apitest: %s", msg)
	}
	return resp, nil
}

func mustLoad(t testing.TB) *Validator {
	t.Helper()
	v, err := Load()
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return v
}

// exchange is one request, routed and validated, waiting for its answer.
type exchange struct {
	method, path string
	route        *routers.Route // nil: undocumented path or method
	routeErr     error
	input        *openapi3filter.RequestValidationInput
	reqErr       error // the document says the request is invalid
}

// prepare routes r and validates it. It returns a nil exchange for
// traffic it does not check (a preflight, or with all=false a request to
// an undocumented path outside /v1/). body is the buffered request body
// when prepare had to read it; the caller must then put it back.
func (v *Validator) prepare(r *http.Request, all bool) (*exchange, []byte, error) {
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		return nil, nil, nil
	}
	ex := &exchange{method: r.Method, path: r.URL.Path}
	routeReq, restParams := v.routable(r)
	route, params, err := v.router.FindRoute(routeReq)
	if err != nil {
		if !all && !errors.Is(err, routers.ErrMethodNotAllowed) && !strings.HasPrefix(r.URL.Path, "/v1/") {
			return nil, nil, nil
		}
		ex.routeErr = err
		return ex, nil, nil
	}
	ex.route = route
	for k, val := range params {
		if u, err := url.PathUnescape(val); err == nil {
			params[k] = u
		}
	}
	for k, val := range restParams {
		params[k] = val
	}

	var body []byte
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
	}
	opts.WithCustomSchemaErrorFunc(shortSchemaError)
	if binaryBody(route.Operation) {
		// Upload bodies can be large and mean nothing to the document:
		// leave them streaming to the handler.
		opts.ExcludeRequestBody = true
	} else if r.Body != nil && r.Body != http.NoBody {
		body, err = io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, nil, err
		}
	}
	vr := r.Clone(r.Context())
	if body != nil {
		vr.Body = io.NopCloser(bytes.NewReader(body))
	} else if opts.ExcludeRequestBody {
		vr.Body = http.NoBody
	}
	ex.input = &openapi3filter.RequestValidationInput{Request: vr, PathParams: params, Route: route, Options: opts}
	ex.reqErr = openapi3filter.ValidateRequest(context.Background(), ex.input)
	return ex, body, nil
}

// routable gives the request the router should see: rest-of-path
// parameters folded into one escaped segment.
func (v *Validator) routable(r *http.Request) (*http.Request, map[string]string) {
	got := strings.Split(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	for _, rp := range v.rest {
		n := len(rp.segs)
		if len(got) <= n {
			continue // nothing to fold: the router matches it as it is
		}
		match := true
		for i, s := range rp.segs[:n-1] {
			if !strings.HasPrefix(s, "{") && s != got[i] || got[i] == "" {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		escaped := strings.Join(got[n-1:], "%2F")
		value, err := url.PathUnescape(strings.Join(got[n-1:], "/"))
		if err != nil {
			continue
		}
		raw := "/" + strings.Join(append(slices.Clone(got[:n-1]), escaped), "/")
		plain, err := url.PathUnescape(raw)
		if err != nil {
			continue
		}
		c := r.Clone(r.Context())
		c.URL.Path, c.URL.RawPath = plain, raw
		return c, map[string]string{strings.Trim(rp.segs[n-1], "{}"): value}
	}
	return r, nil
}

func binaryBody(op *openapi3.Operation) bool {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return false
	}
	for _, mt := range op.RequestBody.Value.Content {
		if mt.Schema == nil || mt.Schema.Value == nil {
			continue
		}
		s := mt.Schema.Value
		if s.Format == "binary" {
			return true
		}
		for _, p := range s.Properties {
			if p.Value != nil && p.Value.Format == "binary" {
				return true
			}
		}
	}
	return false
}

// check validates the answer to ex and returns what is wrong with it.
func (v *Validator) check(ex *exchange, status int, header http.Header, body []byte) []string {
	where := fmt.Sprintf("%s %s → %d", ex.method, ex.path, status)
	if ex.route == nil {
		want := http.StatusNotFound
		if errors.Is(ex.routeErr, routers.ErrMethodNotAllowed) {
			want = http.StatusMethodNotAllowed
		}
		if status != want {
			return []string{fmt.Sprintf("%s: the document has no such operation (%v), so the answer must be %d with an error body", where, ex.routeErr, want)}
		}
		return v.checkErrorBody(where, ex.method, ex.path, header, body)
	}
	var problems []string
	if ex.reqErr != nil && status < 400 {
		problems = append(problems, fmt.Sprintf("%s: the server accepted a request the document forbids: %v", where, ex.reqErr))
	}
	if ex.reqErr != nil && status >= 500 {
		problems = append(problems, fmt.Sprintf("%s: an invalid request must be refused with a 4xx, not %d (request: %v)", where, status, ex.reqErr))
	}
	resp := ex.route.Operation.Responses.Status(status)
	if resp == nil {
		return append(problems, fmt.Sprintf("%s: status %d is not documented for %s %s (body: %s)", where, status, ex.method, ex.route.Path, excerpt(body)))
	}
	// kin-openapi does not look at redirects, 304 or HEAD answers beyond
	// their status: check their required headers here.
	if ex.method == http.MethodHead || status == http.StatusTemporaryRedirect || status == http.StatusPermanentRedirect ||
		status == http.StatusMovedPermanently || status == http.StatusNotModified {
		for name, h := range resp.Value.Headers {
			if h.Value != nil && h.Value.Required && header.Get(name) == "" {
				problems = append(problems, fmt.Sprintf("%s: required header %s is missing", where, name))
			}
		}
		return problems
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: ex.input,
		Status:                 status,
		Header:                 header,
		Options:                ex.input.Options,
	}
	if body == nil { // not captured
		in.Options = &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: true}
		in.Options.WithCustomSchemaErrorFunc(shortSchemaError)
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		problems = append(problems, fmt.Sprintf("%s: the answer does not match the document: %v (body: %s)", where, err, excerpt(body)))
	}
	return problems
}

func (v *Validator) checkErrorBody(where, method, path string, header http.Header, body []byte) []string {
	if method == http.MethodHead {
		return nil
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return []string{fmt.Sprintf("%s: an error must be JSON, got Content-Type %q (body: %s)", where, ct, excerpt(body))}
	}
	var val any
	if err := json.Unmarshal(body, &val); err != nil {
		return []string{fmt.Sprintf("%s: error body is not JSON: %v (body: %s)", where, err, excerpt(body))}
	}
	sch, name := v.errSch, "Error"
	if s, ok := v.prefixErr[firstSegment(path)]; ok {
		sch, name = s, "/"+firstSegment(path)+" error"
	}
	if err := sch.VisitJSON(val, openapi3.SetSchemaErrorMessageCustomizer(shortSchemaError)); err != nil {
		return []string{fmt.Sprintf("%s: error body does not match the %s schema: %v (body: %s)", where, name, err, excerpt(body))}
	}
	return nil
}

// shortSchemaError leaves out the schema dump that kin-openapi appends by
// default: the failing pointer and reason are what a test log needs.
func shortSchemaError(err *openapi3.SchemaError) string {
	ptr := "/" + strings.Join(err.JSONPointer(), "/")
	return fmt.Sprintf("at %s: %s", ptr, err.Reason)
}

func excerpt(b []byte) string {
	const n = 300
	if len(b) > n {
		return fmt.Sprintf("%q…", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

// recorder passes a response through and keeps a copy to validate.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	buf         bytes.Buffer
	truncated   bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wroteHeader = true
	if !r.truncated {
		if r.buf.Len()+len(p) > maxCapture {
			r.truncated = true
			r.buf.Reset()
		} else {
			r.buf.Write(p)
		}
	}
	return r.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach Flush and friends.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush keeps streaming handlers working through the wrapper.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
