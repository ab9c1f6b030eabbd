package file

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gocloud.dev/blob/fileblob"
)

// Query parameters (or POST form fields) that this driver adds to the URL
// fileblob signs.
//
// fileblob's URLSignerHMAC signs only the key ("obj"), "expiry", "method" and
// "contentType". A browser upload must also be held to an exact size (or a
// maximum), an optional SHA-256 and a no-overwrite promise, and its metadata
// must be the granted one. Unsigned, any of those could be edited by the
// client, so they are covered by a second HMAC ("ub-sig") over every signed
// parameter, fileblob's signature included, and the signed metadata values.
// Both HMACs must verify.
const (
	pObj       = "obj"
	pExpiry    = "expiry"
	pMethod    = "method"
	pType      = "contentType"
	pSignature = "signature" // fileblob's HMAC
	pSize      = "ub-size"
	pMax       = "ub-max"
	pSHA256    = "ub-sha256"
	pNoClobber = "ub-noclobber"
	pMeta      = "ub-meta"
	pFilename  = "ub-filename"
	pSig       = "ub-sig" // this driver's HMAC

	// MetaHeaderPrefix is the header (PUT) or form field (POST) prefix of
	// signed user metadata, like S3's x-amz-meta-.
	MetaHeaderPrefix = "X-Upbroker-Meta-"
	// SignatureParam is the query parameter of this driver's own HMAC.
	SignatureParam = pSig
)

// checksumMetaKey keeps the SHA-256 the handler verified, so that Stat can
// report it. The broker refuses client metadata starting with "upbroker", so
// no client can forge it.
const checksumMetaKey = "upbrokersha256"

// ticket is what one signed URL allows.
type ticket struct {
	Key         string
	Method      string
	ContentType string
	Expiry      time.Time
	Size        int64 // exact body size of a PUT; -1 when not signed
	Max         int64 // maximum file size of a POST; -1 when not signed
	SHA256      string
	NoClobber   bool
	Meta        map[string]string
	Filename    string
}

type signer struct {
	fb     *fileblob.URLSignerHMAC
	ext    []byte // key of the second HMAC, derived so the two never share a key
	prefix string // base URL of the blob route, without trailing slash

	// fbMAC and extMAC pool HMAC states keyed with fileblob's key and ext:
	// setting one up costs more than the hashing a grant needs.
	fbMAC, extMAC hmacPool
	bufs          sync.Pool // of *[]byte, scratch for messages and URLs
}

func newSigner(baseURL string, key []byte) (*signer, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("base URL: %w", err)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		// The key is appended to the base URL as a path; a query would
		// swallow it.
		return nil, fmt.Errorf("base URL %q must not have a query or fragment", baseURL)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("upbroker/drivers/file ub-sig v1"))
	s := &signer{
		fb:     fileblob.NewURLSignerHMAC(u, key),
		ext:    m.Sum(nil),
		prefix: strings.TrimSuffix(baseURL, "/"),
	}
	s.fbMAC.init(append([]byte(nil), key...))
	s.extMAC.init(s.ext)
	s.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	return s, nil
}

// sign returns the signed parameters for t and the real expiry. The POST
// form and tests use it; grants of a URL use signURL, which makes the same
// parameters without building a url.Values.
func (s *signer) sign(_ context.Context, t ticket, ttl time.Duration) (url.Values, time.Time, error) {
	var names [maxMeta]string
	q := s.query(t, ttl, names[:0])
	buf := s.getBuf()
	defer s.putBuf(buf)
	*buf = q.encode((*buf)[:0], stageURL)
	// Parsed back from the URL's own text, so that the form and the URL can
	// never disagree on a parameter.
	v, err := url.ParseQuery(string(*buf))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sign url: %w", err)
	}
	return v, time.Unix(q.expiry, 0), nil
}

// signURL is the hot path of a PUT or GET grant: the URL that sign and url
// would make, with one allocation for the result.
func (s *signer) signURL(t ticket, ttl time.Duration) (string, time.Time) {
	var names [maxMeta]string
	q := s.query(t, ttl, names[:0])
	buf := s.getBuf()
	b := append((*buf)[:0], s.prefix...)
	b = append(b, '/')
	b = append(b, t.Key...) // checkKey allows only bytes that need no escaping in a path
	b = append(b, '?')
	b = q.encode(b, stageURL)
	u := string(b)
	*buf = b
	s.putBuf(buf)
	return u, time.Unix(q.expiry, 0)
}

// maxMeta bounds the metadata names kept on the stack; more spill to the
// heap and still work.
const maxMeta = 24

// query computes both signatures of t. names is scratch for the sorted
// metadata names.
func (s *signer) query(t ticket, ttl time.Duration, names []string) signedQuery {
	// The expiry as fileblob's URLFromKey computes it.
	q := signedQuery{t: t, expiry: time.Now().Add(ttl).Unix()}
	if len(t.Meta) > 0 {
		for k := range t.Meta {
			names = append(names, k)
		}
		slices.Sort(names)
		q.names = names
	}
	buf := s.getBuf()
	defer s.putBuf(buf)
	// fileblob's own signature, computed as URLSignerHMAC.getMAC does:
	// HMAC-SHA256 over url.Values{obj, expiry, method, contentType}.Encode(),
	// base64url without padding. Computing it here spares the url.Values
	// it builds, encodes, parses and encodes again; fileblob's KeyFromURL
	// still checks it on every request (verify), and a test compares it
	// with URLFromKey's.
	*buf = q.encode((*buf)[:0], stageFileblob)
	*buf = s.fbMAC.sum(*buf, len(*buf))
	base64.RawURLEncoding.Encode(q.sig[:], (*buf)[len(*buf)-sha256.Size:])
	*buf = q.encode((*buf)[:0], stageExt)
	*buf = s.extMAC.sum(*buf, len(*buf))
	base64.RawURLEncoding.Encode(q.ubsig[:], (*buf)[len(*buf)-sha256.Size:])
	return q
}

func (s *signer) getBuf() *[]byte  { return s.bufs.Get().(*[]byte) }
func (s *signer) putBuf(b *[]byte) { s.bufs.Put(b) }

// url is the address a signed request goes to. The key in the path is what
// the broker routes on; the signed "obj" parameter must match it.
func (s *signer) url(key string, q url.Values) string {
	return s.prefix + "/" + key + "?" + q.Encode()
}

// hmacPool hands out HMAC-SHA256 states for one key.
type hmacPool struct{ p sync.Pool }

func (h *hmacPool) init(key []byte) {
	h.p.New = func() any { return hmac.New(sha256.New, key) }
}

// sum appends the MAC of b[:n] to b.
func (h *hmacPool) sum(b []byte, n int) []byte {
	m := h.p.Get().(hash.Hash)
	m.Reset()
	m.Write(b[:n])
	b = m.Sum(b)
	h.p.Put(m)
	return b
}

// Stages of signedQuery.encode: the parameters of fileblob's MAC, those of
// ub-sig (with the metadata values), and those of the URL.
const (
	stageFileblob = iota
	stageExt
	stageURL
)

// signedQuery is one grant's parameters.
type signedQuery struct {
	t      ticket
	expiry int64
	names  []string // metadata names, sorted
	sig    [43]byte // fileblob's MAC, base64url
	ubsig  [43]byte // ub-sig, base64url
}

// encode appends the parameters of a stage exactly as url.Values.Encode
// would: sorted by name, names and values query-escaped, joined by "&".
// The names below are listed in that order. Byte-for-byte equality
// matters: the MACs are computed over this text, and verify recomputes
// them with url.Values.
func (q *signedQuery) encode(b []byte, stage int) []byte {
	t := &q.t
	n := len(b)
	param := func(name string) {
		if len(b) > n {
			b = append(b, '&')
		}
		b = appendQueryEscape(b, name)
		b = append(b, '=')
	}
	if t.ContentType != "" {
		param(pType)
		b = appendQueryEscape(b, t.ContentType)
	}
	param(pExpiry)
	b = strconv.AppendInt(b, q.expiry, 10)
	if stage == stageExt {
		for _, k := range q.names {
			b = append(b, "&meta%3A"...) // "meta:" + k, escaped
			b = appendQueryEscape(b, k)
			b = append(b, '=')
			b = appendQueryEscape(b, t.Meta[k])
		}
	}
	param(pMethod)
	b = appendQueryEscape(b, t.Method)
	param(pObj)
	b = appendQueryEscape(b, t.Key)
	if stage == stageFileblob {
		return b
	}
	param(pSignature)
	b = append(b, q.sig[:]...)
	if t.Filename != "" {
		param(pFilename)
		b = appendQueryEscape(b, t.Filename)
	}
	if t.Max >= 0 {
		param(pMax)
		b = strconv.AppendInt(b, t.Max, 10)
	}
	if len(q.names) > 0 {
		param(pMeta)
		for i, k := range q.names {
			if i > 0 {
				b = append(b, "%2C"...) // ","
			}
			b = appendQueryEscape(b, k)
		}
	}
	if t.NoClobber {
		param(pNoClobber)
		b = append(b, '1')
	}
	if t.SHA256 != "" {
		param(pSHA256)
		b = appendQueryEscape(b, t.SHA256)
	}
	if stage == stageURL {
		param(pSig)
		b = append(b, q.ubsig[:]...)
	}
	if t.Size >= 0 {
		param(pSize)
		b = strconv.AppendInt(b, t.Size, 10)
	}
	return b
}

// unreserved are the bytes url.QueryEscape leaves as they are.
var unreserved = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
	}
	return t
}()

// appendQueryEscape appends url.QueryEscape(s) without allocating, copying
// runs of unreserved bytes at once.
func appendQueryEscape(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for {
		i := 0
		for i < len(s) && unreserved[s[i]] {
			i++
		}
		b = append(b, s[:i]...)
		if i == len(s) {
			return b
		}
		if c := s[i]; c == ' ' {
			b = append(b, '+')
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
		s = s[i+1:]
	}
}

// signedParams are the parameters covered by ub-sig, in a fixed set so that
// an added parameter is never silently trusted.
var signedParams = []string{pObj, pExpiry, pMethod, pType, pSignature, pSize, pMax, pSHA256, pNoClobber, pMeta, pFilename}

func (s *signer) mac(q url.Values, meta map[string]string) string {
	v := make(url.Values, len(signedParams)+len(meta))
	for _, p := range signedParams {
		if x, ok := q[p]; ok {
			v[p] = x
		}
	}
	for k, x := range meta {
		v["meta:"+k] = []string{x}
	}
	m := hmac.New(sha256.New, s.ext)
	m.Write([]byte(v.Encode()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// errExpired and errForbidden are the two ways verify refuses a URL.
var (
	errExpired   = errors.New("the signed URL has expired")
	errForbidden = errors.New("the signature does not match this request")
)

// verify checks q (the query of a PUT/GET, or the fields of a POST) for key,
// with meta giving the value the request carries for a signed metadata name
// (and whether it carries it). It checks both HMACs and the expiry.
func (s *signer) verify(ctx context.Context, q url.Values, key string, meta func(name string) (string, bool)) (ticket, error) {
	if q.Get(pSig) == "" || q.Get(pSignature) == "" {
		return ticket{}, fmt.Errorf("%w: the request carries no signature", errForbidden)
	}
	if q.Get(pObj) != key {
		return ticket{}, fmt.Errorf("%w: the URL is signed for another key", errForbidden)
	}
	t := ticket{Key: key, Method: q.Get(pMethod), ContentType: q.Get(pType), Size: -1, Max: -1,
		SHA256: q.Get(pSHA256), NoClobber: q.Get(pNoClobber) == "1", Filename: q.Get(pFilename)}
	if names := q.Get(pMeta); names != "" {
		t.Meta = map[string]string{}
		for _, n := range strings.Split(names, ",") {
			v, ok := meta(n)
			if !ok {
				return ticket{}, fmt.Errorf("%w: signed metadata %s%s is missing", errForbidden, MetaHeaderPrefix, n)
			}
			t.Meta[n] = v
		}
	}
	if !hmac.Equal([]byte(q.Get(pSig)), []byte(s.mac(q, t.Meta))) {
		return ticket{}, fmt.Errorf("%w (check the URL and the %s* headers)", errForbidden, MetaHeaderPrefix)
	}
	exp, err := strconv.ParseInt(q.Get(pExpiry), 10, 64)
	if err != nil {
		return ticket{}, fmt.Errorf("%w: bad expiry", errForbidden)
	}
	t.Expiry = time.Unix(exp, 0)
	if time.Now().Unix() > exp {
		return ticket{}, fmt.Errorf("%w at %s", errExpired, t.Expiry.UTC().Format(time.RFC3339))
	}
	// fileblob's own check of its HMAC (and of the expiry, again).
	if _, err := s.fb.KeyFromURL(ctx, &url.URL{RawQuery: q.Encode()}); err != nil {
		return ticket{}, fmt.Errorf("%w: %v", errForbidden, err)
	}
	for p, dst := range map[string]*int64{pSize: &t.Size, pMax: &t.Max} {
		if x := q.Get(p); x != "" {
			if *dst, err = strconv.ParseInt(x, 10, 64); err != nil || *dst < 0 {
				return ticket{}, fmt.Errorf("%w: bad %s", errForbidden, p)
			}
		}
	}
	return t, nil
}

// timeUntil is how many whole seconds a ticket has left.
func timeUntil(t ticket) int64 { return int64(time.Until(t.Expiry).Seconds()) }
