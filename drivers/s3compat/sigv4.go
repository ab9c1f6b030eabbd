package s3compat

// A SigV4 query-string presigner for the hot path: one PUT (or part, or
// GET) grant costs a few microseconds and a handful of allocations, where
// the SDKs spend tens of microseconds and hundreds of allocations building
// and parsing an http.Request, running middleware, resolving endpoints and
// deriving the signing key again on every call.
//
// It implements exactly what AWS documents for presigned URLs
// (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html)
// and only for requests whose every piece the two SDKs agree on; anything
// else makes Presign report false so the driver falls back to its SDK.
// The drivers' tests sign the same requests with this code and with each
// SDK at the same instant and require byte-identical URLs.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/upbroker/upbroker/drivers"
)

const (
	sigAlgorithm   = "AWS4-HMAC-SHA256"
	amzDateLayout  = "20060102T150405Z"
	unsignedPaylod = "UNSIGNED-PAYLOAD"
	// ProbeKey is the object key drivers presign once with their SDK to
	// learn how it addresses the bucket (see NewPresigner). It needs no
	// escaping, so the SDK's URL ends in exactly "/"+ProbeKey.
	ProbeKey = "upbroker-address-probe"
)

// Credentials sign one request. A SessionToken (temporary credentials)
// is carried in X-Amz-Security-Token, which the signature covers.
type Credentials struct {
	AccessKey    string
	SecretKey    string
	SessionToken string
}

// Param is one query parameter besides the X-Amz-* ones (partNumber,
// uploadId, x-id, response-content-disposition), unescaped.
type Param struct{ Name, Value string }

// Header is one signed header besides host. Name is lower case.
type Header struct{ Name, Value string }

// SignRequest is what Presign signs.
type SignRequest struct {
	Method  string
	Key     string
	Query   []Param
	Headers []Header
	Expires time.Duration // whole seconds; see Expiry
	Time    time.Time     // the signing instant, X-Amz-Date
}

// Presigner signs requests to one bucket, addressed as the driver's SDK
// addresses it. It is safe for concurrent use.
type Presigner struct {
	base      string // scheme://host/prefix/, the URL of the bucket's root
	uriPrefix string // the escaped path of base: the canonical URI's start
	host      string // the Host header a client sends, as signed
	region    string
	keys      atomic.Pointer[signingKey]
}

// NewPresigner learns the bucket's address from probe, the URL the SDK
// produced for a presigned request of ProbeKey (its query is ignored): the
// scheme, host and path prefix (path-style "/bucket/" or virtual-host
// "/"). An address the fast path does not handle is an error, and the
// driver then keeps signing with its SDK.
func NewPresigner(probe *url.URL, region string) (*Presigner, error) {
	if probe == nil || probe.Host == "" || (probe.Scheme != "http" && probe.Scheme != "https") {
		return nil, errors.New("probe URL has no http(s) host")
	}
	if region == "" {
		return nil, errors.New("no region")
	}
	path := probe.EscapedPath()
	prefix, ok := strings.CutSuffix(path, "/"+ProbeKey)
	if !ok {
		return nil, fmt.Errorf("probe URL path %q does not end in the probe key", path)
	}
	prefix += "/"
	// The probe's scope says how the SDK signs this bucket: only plain
	// SigV4 for service s3 in the configured region is ours to repeat
	// (not Outposts' s3-outposts, not S3 Express sessions).
	q := probe.Query()
	if a := q.Get("X-Amz-Algorithm"); a != sigAlgorithm {
		return nil, fmt.Errorf("the SDK signs with %q, not %s", a, sigAlgorithm)
	}
	if cred := q.Get("X-Amz-Credential"); !strings.HasSuffix(cred, "/"+region+"/s3/aws4_request") {
		return nil, fmt.Errorf("the SDK's signing scope %q is not region %q, service s3", cred, region)
	}
	host := probe.Host
	// Browsers and curl drop a default port from the Host header, and
	// both SDKs sign it without one.
	if h, port, err := net.SplitHostPort(host); err == nil &&
		(probe.Scheme == "http" && port == "80" || probe.Scheme == "https" && port == "443") {
		if strings.Contains(h, ":") {
			// The SDKs disagree on brackets for an IPv6 literal here.
			return nil, errors.New("IPv6 host with a default port")
		}
		host = h
	}
	return &Presigner{
		base:      probe.Scheme + "://" + probe.Host + prefix,
		uriPrefix: prefix,
		host:      host,
		region:    region,
	}, nil
}

// signingKey is the day's derived key, kept as HMAC's padded inner and
// outer blocks so each signature is two SHA-256 sums and no allocation.
type signingKey struct {
	secret string
	day    string
	ipad   [sha256.BlockSize]byte
	opad   [sha256.BlockSize]byte
}

// key returns the signing key for secret on day (yyyymmdd), deriving it
// only when the day or the secret (rotated credentials) changed. Races
// between goroutines at midnight only derive the same key twice.
func (p *Presigner) key(secret string, dayBytes []byte) *signingKey {
	if k := p.keys.Load(); k != nil && k.day == string(dayBytes) && k.secret == secret {
		return k
	}
	day := string(dayBytes)
	// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, day), region), "s3"), "aws4_request")
	k := hmacSum([]byte("AWS4"+secret), day)
	k = hmacSum(k, p.region)
	k = hmacSum(k, "s3")
	k = hmacSum(k, "aws4_request")
	sk := &signingKey{secret: secret, day: day}
	// RFC 2104: a key no longer than a block is zero-padded to it.
	copy(sk.ipad[:], k)
	copy(sk.opad[:], k)
	for i := range sk.ipad {
		sk.ipad[i] ^= 0x36
		sk.opad[i] ^= 0x5c
	}
	p.keys.Store(sk)
	return sk
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// sign is HMAC-SHA256(key, msg) per RFC 2104 with the pads precomputed;
// scratch is reused for the concatenations.
func (k *signingKey) sign(scratch []byte, msg []byte) ([sha256.Size]byte, []byte) {
	scratch = append(append(scratch[:0], k.ipad[:]...), msg...)
	inner := sha256.Sum256(scratch)
	scratch = append(append(scratch[:0], k.opad[:]...), inner[:]...)
	return sha256.Sum256(scratch), scratch
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// qparam is a query parameter whose value is a string, or else the bytes
// b[start:end] of the scratch buffer (offsets, not a slice, so that the
// stack arrays around it stay on the stack).
type qparam struct {
	name       string
	sval       string
	start, end int
}

// Presign returns the presigned URL of r, or false when r holds anything
// the fast path does not sign exactly as the SDKs do (no credentials, an
// empty or non-UTF-8 key, a header value outside printable ASCII): the
// caller then signs with its SDK.
func (p *Presigner) Presign(c Credentials, r *SignRequest) (string, bool) {
	if p == nil || c.AccessKey == "" || c.SecretKey == "" || r.Key == "" || !utf8.ValidString(r.Key) {
		return "", false
	}
	for _, h := range r.Headers {
		if !printableASCII(h.Value) || !lowerToken(h.Name) || h.Name == "host" {
			return "", false
		}
	}
	secs := int64(r.Expires / time.Second)
	if secs < 1 {
		return "", false
	}

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := (*bp)[:0]

	b = r.Time.UTC().AppendFormat(b, amzDateLayout)
	dateEnd := len(b)
	b = strconv.AppendInt(b, secs, 10)
	expEnd := len(b)

	// Signed headers: the request's plus host, sorted by name.
	var hsArr [12]Header
	hs := append(hsArr[:0], r.Headers...)
	hs = append(hs, Header{Name: "host", Value: p.host})
	slices.SortFunc(hs, func(a, b Header) int { return strings.Compare(a.Name, b.Name) })

	// Scratch values, laid out at the start of b: the credential and the
	// signed-header list.
	credStart := len(b)
	b = append(b, c.AccessKey...)
	b = append(b, '/')
	b = append(b, b[:8]...)
	b = append(b, '/')
	b = append(b, p.region...)
	b = append(b, "/s3/aws4_request"...)
	credEnd := len(b)
	for i, h := range hs {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, h.Name...)
	}
	shEnd := len(b)

	var qsArr [12]qparam
	qs := append(qsArr[:0],
		qparam{name: "X-Amz-Algorithm", sval: sigAlgorithm},
		qparam{name: "X-Amz-Credential", start: credStart, end: credEnd},
		qparam{name: "X-Amz-Date", start: 0, end: dateEnd},
		qparam{name: "X-Amz-Expires", start: dateEnd, end: expEnd},
		qparam{name: "X-Amz-SignedHeaders", start: credEnd, end: shEnd},
	)
	if c.SessionToken != "" {
		qs = append(qs, qparam{name: "X-Amz-Security-Token", sval: c.SessionToken})
	}
	for _, q := range r.Query {
		qs = append(qs, qparam{name: q.Name, sval: q.Value})
	}
	// Canonical order is by name (the names are unreserved characters, so
	// raw and escaped orders agree); both SDKs put the query in it too.
	slices.SortFunc(qs, func(a, b qparam) int { return strings.Compare(a.name, b.name) })

	// The canonical request:
	//   method \n URI \n query \n headers \n signed-headers \n payload-hash
	crStart := len(b)
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = append(b, p.uriPrefix...)
	keyStart := len(b)
	b = appendEscaped(b, r.Key, true)
	keyEnd := len(b)
	b = append(b, '\n')
	qStart := len(b)
	for i, q := range qs {
		if i > 0 {
			b = append(b, '&')
		}
		b = appendEscaped(b, q.name, false)
		b = append(b, '=')
		if q.end > 0 {
			b = appendEscapedBytes(b, b[q.start:q.end])
		} else {
			b = appendEscaped(b, q.sval, false)
		}
	}
	qEnd := len(b)
	b = append(b, '\n')
	for _, h := range hs {
		b = append(b, h.Name...)
		b = append(b, ':')
		b = appendTrimmed(b, h.Value)
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, b[credEnd:shEnd]...)
	b = append(b, '\n')
	b = append(b, unsignedPaylod...)
	crHash := sha256.Sum256(b[crStart:])

	// The string to sign: algorithm \n date \n scope \n hex(sha256(CR)).
	stsStart := len(b)
	b = append(b, sigAlgorithm...)
	b = append(b, '\n')
	b = append(b, b[:dateEnd]...)
	b = append(b, '\n')
	b = append(b, b[credStart+len(c.AccessKey)+1:credEnd]...) // the scope
	b = append(b, '\n')
	b = hex.AppendEncode(b, crHash[:])
	stsEnd := len(b)

	var scratchArr [sha256.BlockSize + 256]byte
	sig, _ := p.key(c.SecretKey, b[:8]).sign(scratchArr[:0], b[stsStart:stsEnd])

	var u strings.Builder
	u.Grow(len(p.base) + (keyEnd - keyStart) + 1 + (qEnd - qStart) + len("&X-Amz-Signature=") + 2*len(sig))
	u.WriteString(p.base)
	u.Write(b[keyStart:keyEnd])
	u.WriteByte('?')
	u.Write(b[qStart:qEnd])
	u.WriteString("&X-Amz-Signature=")
	var sigHex [2 * sha256.Size]byte
	hex.Encode(sigHex[:], sig[:])
	u.Write(sigHex[:])
	*bp = b
	return u.String(), true
}

// unreserved are the characters SigV4's UriEncode leaves alone.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

const upperHex = "0123456789ABCDEF"

// appendEscaped is SigV4's UriEncode: every byte but the unreserved ones
// (and '/', in an object key's path) becomes %XX in upper-case hex. S3
// does not normalise paths, so "a//b" and "./" stay as they are.
func appendEscaped(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || keepSlash && c == '/' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

func appendEscapedBytes(dst, s []byte) []byte {
	for _, c := range s {
		if unreserved(c) {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

// appendTrimmed writes a header value as SigV4 canonicalises it: no
// leading or trailing spaces, runs of spaces as one.
func appendTrimmed(dst []byte, v string) []byte {
	v = strings.Trim(v, " ")
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		dst = append(dst, v[i])
	}
	return dst
}

// printableASCII: the SDKs canonicalise other whitespace (tabs) and
// non-ASCII differently from each other, so such values take the SDK path.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// lowerToken: a header name the SDKs would sign under this very spelling.
func lowerToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// PutSignedHeaders are the headers a PUT grant signs besides host, as the
// SDKs sign them: the grant's headers (PutHeaders) under lower-case names,
// and Content-Length when signLength. dst is reused.
func PutSignedHeaders(dst []Header, c drivers.Constraints, signLength bool) []Header {
	if signLength {
		dst = append(dst, Header{"content-length", strconv.FormatInt(c.Size, 10)})
	}
	if c.ContentType != "" {
		dst = append(dst, Header{"content-type", c.ContentType})
	}
	if c.NoOverwrite {
		dst = append(dst, Header{"if-none-match", "*"})
	}
	if c.ChecksumSHA256 != "" {
		dst = append(dst, Header{HeaderChecksumSHA256, c.ChecksumSHA256})
	}
	for k, v := range c.Metadata {
		dst = append(dst, Header{MetaPrefix + k, v})
	}
	return dst
}
