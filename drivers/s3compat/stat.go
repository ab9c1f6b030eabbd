package s3compat

// A fast Stat for the broker's own HEAD of an object, the one store call
// on every completed upload. The SDKs spend most of their Stat in
// signing (the signing key derived again on every call), building the
// request through their middleware, and turning every response header
// into an object description. Here the HEAD is presigned with the cached
// key and only the headers the broker reads are parsed.
//
// The fast path answers only where its answer is certainly the SDK's:
// a 200 with well-formed headers, or a 404 for a missing key. Anything
// else (no signature possible, a network failure, 403, 5xx, a redirect,
// a header the SDK would read differently) makes Stat report false, and
// the driver asks its SDK, which retries and maps errors as before.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// StatExpiry is the life of the presigned HEAD URL. It never leaves the
// process and is used at once, so its life only has to cover clock skew
// between broker and store: fifteen minutes is what the stores allow
// header-signed requests, which is how the SDKs sign the same HEAD.
const StatExpiry = 15 * time.Minute

// checksumModeHeader asks the store for the object's checksums, as both
// drivers' SDK Stat does.
const checksumModeHeader = "x-amz-checksum-mode"

const canonicalMetaPrefix = "X-Amz-Meta-" // http.CanonicalHeaderKey(MetaPrefix)

// StatClient sends signed HEADs to one bucket on the broker's endpoint.
// It is safe for concurrent use.
type StatClient struct {
	p *Presigner
	// rt is used directly, not through an http.Client: a HEAD here
	// follows no redirect (a wrong region is the SDK's to explain) and
	// keeps no cookies, and the client's per-request copies of headers
	// and URL would be a third of the fast path's allocations.
	rt    http.RoundTripper
	where string
	// notFound is the S3 error code the driver's SDK gives a HEAD's 404
	// (a HEAD has no body to carry one), so error text stays the same.
	notFound string
}

// NewStatClient builds the fast Stat on p, a Presigner for the broker's
// own endpoint (not public_endpoint), sending through tr. where names the
// store in errors; notFoundCode is the code the SDK reports for a 404.
func NewStatClient(p *Presigner, tr http.RoundTripper, where, notFoundCode string) *StatClient {
	if p == nil || tr == nil {
		return nil
	}
	return &StatClient{p: p, rt: tr, where: where, notFound: notFoundCode}
}

// StatTransport is tr tuned for many small concurrent HEADs: enough idle
// connections per host that the completes of a busy broker reuse them,
// and no transparent gzip (a HEAD has no body to decompress).
func StatTransport(tr *http.Transport) *http.Transport {
	tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, 64)
	tr.MaxIdleConns = max(tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
	tr.DisableCompression = true
	return tr
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (s *StatClient) CloseIdleConnections() {
	if c, ok := s.rtCloser(); ok {
		c.CloseIdleConnections()
	}
}

func (s *StatClient) rtCloser() (interface{ CloseIdleConnections() }, bool) {
	if s == nil {
		return nil, false
	}
	c, ok := s.rt.(interface{ CloseIdleConnections() })
	return c, ok
}

// StatusError is a store's answer to a HEAD that is not a success. A HEAD
// has no body, so Code comes from the status (or MinIO's error header).
type StatusError struct {
	Status int
	Code   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HEAD answered %d %s (%s)", e.Status, http.StatusText(e.Status), e.Code)
}

// Fallback is Stat's answer when the fast path cannot answer for
// certain: the caller asks its SDK. Reason is for debug logs and never
// holds the signed URL.
type Fallback struct{ Reason string }

func (f *Fallback) Error() string { return "fast stat declined: " + f.Reason }

// Stat sends a HEAD for key signed with c at now. An error that is a
// *Fallback means the caller must ask its SDK instead; any other error
// is the store's answer, mapped like the SDK's (a missing key wraps
// drivers.ErrNotFound).
func (s *StatClient) Stat(ctx context.Context, c Credentials, key string, now time.Time) (drivers.ObjectInfo, error) {
	if s == nil {
		return drivers.ObjectInfo{}, &Fallback{"no fast stat"}
	}
	hs := [1]Header{{Name: checksumModeHeader, Value: "ENABLED"}}
	u, signed := s.p.Presign(c, &SignRequest{Method: http.MethodHead, Key: key, Headers: hs[:], Expires: StatExpiry, Time: now})
	if !signed {
		return drivers.ObjectInfo{}, &Fallback{"not signable"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return drivers.ObjectInfo{}, &Fallback{"request: " + err.Error()}
	}
	// The presigner signed the host as clients send it (no default port).
	req.Host = s.p.host
	req.Header = http.Header{
		"X-Amz-Checksum-Mode": {"ENABLED"},
		"User-Agent":          {"upbroker"},
	}
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		// Transports do not quote the URL, but an http.Client's
		// *url.Error would: keep only a cause, never the signed URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return drivers.ObjectInfo{}, &Fallback{"transport: " + err.Error()}
	}
	// A HEAD's body is empty; closing it returns the connection to the pool.
	_ = resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		info, reason := parseHead(key, resp.Header)
		if reason != "" {
			return drivers.ObjectInfo{}, &Fallback{reason}
		}
		return info, nil
	case http.StatusNotFound:
		code := resp.Header.Get("X-Minio-Error-Code")
		if code != "" && code != "NoSuchKey" {
			// NoSuchBucket, say: the SDK maps it as it always has.
			return drivers.ObjectInfo{}, &Fallback{"404 " + code}
		}
		se := &StatusError{Status: resp.StatusCode, Code: s.notFound}
		return drivers.ObjectInfo{}, MapError(s.where, "stat", key, StoreError{Code: se.Code, Status: se.Status}, se)
	}
	return drivers.ObjectInfo{}, &Fallback{"status " + strconv.Itoa(resp.StatusCode)}
}

// parseHead reads what Stat returns from a 200's headers, exactly as both
// SDKs read them. A header either SDK would read otherwise, or fail on,
// is a reason to let the SDK read it.
func parseHead(key string, h http.Header) (drivers.ObjectInfo, string) {
	info := drivers.ObjectInfo{Key: key}
	size, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	if err != nil || size < 0 {
		return info, "Content-Length"
	}
	info.Size = size
	// minio-go gives an absent type as application/octet-stream, the
	// AWS SDK as "".
	if info.ContentType = strings.TrimSpace(h.Get("Content-Type")); info.ContentType == "" {
		return info, "no Content-Type"
	}
	if info.ModTime, err = time.Parse(http.TimeFormat, h.Get("Last-Modified")); err != nil {
		return info, "Last-Modified"
	}
	if h.Get("X-Minio-Source-Mtime") != "" {
		return info, "X-Minio-Source-Mtime" // minio-go takes the time from it
	}
	info.ETag = TrimETag(h.Get("ETag"))
	info.ChecksumSHA256 = WholeChecksum(h.Get(HeaderChecksumSHA256))
	info.Metadata = make(map[string]string, 4)
	for k, v := range h {
		if len(k) < len(canonicalMetaPrefix) {
			continue
		}
		if !strings.HasPrefix(k, canonicalMetaPrefix) {
			if strings.EqualFold(k[:len(canonicalMetaPrefix)], MetaPrefix) {
				// A name net/http could not canonicalise: minio-go
				// skips it, the AWS SDK keeps it.
				return info, "non-canonical metadata name"
			}
			continue
		}
		if len(v) == 0 || strings.HasPrefix(v[0], "=?") {
			return info, "encoded metadata value" // minio-go decodes RFC 2047
		}
		info.Metadata[MetaKey(k[len(canonicalMetaPrefix):])] = v[0]
	}
	return info, ""
}
