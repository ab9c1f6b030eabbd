package gcs

import (
	"context"
	"crypto/rsa"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/upbroker/upbroker/internal/testenv"
)

// verifyingProxy stands in front of fake-gcs-server and checks, on every
// signed-URL request, what real GCS checks and the emulator does not: the
// V4 signature (with the test key), expiry, that signed headers arrive with
// their signed values, x-goog-content-length-range, and
// x-goog-if-generation-match: 0 against an existing object. JSON-API calls
// (the driver's own Stat, Delete, List) pass through, as their OAuth is
// outside this driver's concern.
type verifyingProxy struct {
	pub     *rsa.PublicKey
	fake    *testenv.FakeGCS
	rp      *httputil.ReverseProxy
	srv     *httptest.Server
	mu      sync.Mutex
	offset  time.Duration // the proxy's clock runs this far ahead
	refused int
}

func startProxy(t *testing.T, fake *testenv.FakeGCS, pub *rsa.PublicKey) *verifyingProxy {
	t.Helper()
	target, err := url.Parse(fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := &verifyingProxy{pub: pub, fake: fake}
	p.rp = &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target) // also sets Host, which fake-gcs-server routes on
	}}
	p.srv = httptest.NewServer(p)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *verifyingProxy) now() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return time.Now().Add(p.offset)
}

// gcsError answers as GCS's XML API does.
func (p *verifyingProxy) gcsError(w http.ResponseWriter, status int, code, msg string) {
	p.mu.Lock()
	p.refused++
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	w.WriteHeader(status)
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName xml.Name `xml:"Error"`
		Code    string   `xml:"Code"`
		Message string   `xml:"Message"`
	}{Code: code, Message: msg})
}

func (p *verifyingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if strings.HasPrefix(path, "/storage/v1/") || strings.HasPrefix(path, "/upload/storage/v1/") {
		p.rp.ServeHTTP(w, r)
		return
	}
	// Everything else is the XML API on an object: the bucket is private,
	// so it must carry a valid signature.
	if r.Method == http.MethodOptions {
		p.rp.ServeHTTP(w, r)
		return
	}
	if r.URL.Query().Get("X-Goog-Signature") == "" {
		p.gcsError(w, http.StatusForbidden, "AccessDenied", "Anonymous caller does not have storage.objects access.")
		return
	}
	header := func(name string) string {
		if name == "host" {
			// The Go library signs the host without its port (real GCS
			// hosts never carry one), so the comparison does the same.
			h := r.Host
			if i := strings.LastIndexByte(h, ':'); i >= 0 {
				h = h[:i]
			}
			return h
		}
		return strings.Join(r.Header.Values(name), ",")
	}
	signed, err := v4Verify(v4Request{Method: r.Method, URL: r.URL, Header: header}, p.pub, p.now())
	switch {
	case errors.Is(err, errExpired):
		p.gcsError(w, http.StatusBadRequest, "ExpiredToken", "Invalid argument.")
		return
	case err != nil:
		p.gcsError(w, http.StatusForbidden, "SignatureDoesNotMatch", err.Error())
		return
	}
	// GCS applies these only when they are signed; an unsigned one could
	// be added or dropped by the client at will.
	if r.Method == http.MethodPut && contains(signed, "x-goog-content-length-range") {
		lo, hi, ok := parseRange(r.Header.Get("x-goog-content-length-range"))
		if !ok {
			p.gcsError(w, http.StatusBadRequest, "InvalidArgument", "bad x-goog-content-length-range")
			return
		}
		if r.ContentLength < 0 {
			p.gcsError(w, http.StatusLengthRequired, "MissingContentLength", "Content-Length required")
			return
		}
		if r.ContentLength < lo || r.ContentLength > hi {
			p.gcsError(w, http.StatusBadRequest, "EntityTooLarge", fmt.Sprintf("length %d outside %d,%d", r.ContentLength, lo, hi))
			return
		}
	}
	if r.Method == http.MethodPut && contains(signed, "x-goog-if-generation-match") {
		if r.Header.Get("x-goog-if-generation-match") != "0" {
			p.gcsError(w, http.StatusNotImplemented, "NotImplemented", "the proxy checks only generation 0")
			return
		}
		exists, err := p.exists(r.Context(), path)
		if err != nil {
			p.gcsError(w, http.StatusServiceUnavailable, "ServiceUnavailable", err.Error())
			return
		}
		if exists {
			p.gcsError(w, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold.")
			return
		}
	}
	p.rp.ServeHTTP(w, r)
}

func parseRange(v string) (lo, hi int64, ok bool) {
	a, b, found := strings.Cut(v, ",")
	if !found {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	hi, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	return lo, hi, err1 == nil && err2 == nil && lo >= 0 && lo <= hi
}

// exists asks the emulator's JSON API whether /bucket/object is there.
func (p *verifyingProxy) exists(ctx context.Context, xmlPath string) (bool, error) {
	bucket, object, ok := strings.Cut(strings.TrimPrefix(xmlPath, "/"), "/")
	if !ok {
		return false, fmt.Errorf("no object in %q", xmlPath)
	}
	u := p.fake.URL + "/storage/v1/b/" + url.PathEscape(bucket) + "/o/" + url.PathEscape(object)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("emulator answered %s", resp.Status)
}
