package file

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob/driver"
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
}

func newSigner(baseURL string, key []byte) (*signer, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("base URL: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("upbroker/drivers/file ub-sig v1"))
	return &signer{
		fb:     fileblob.NewURLSignerHMAC(u, key),
		ext:    m.Sum(nil),
		prefix: strings.TrimSuffix(baseURL, "/"),
	}, nil
}

// sign returns the signed parameters for t and the real expiry.
func (s *signer) sign(ctx context.Context, t ticket, ttl time.Duration) (url.Values, time.Time, error) {
	u, err := s.fb.URLFromKey(ctx, t.Key, &driver.SignedURLOptions{Expiry: ttl, Method: t.Method, ContentType: t.ContentType})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sign url: %w", err)
	}
	q := u.Query()
	exp, err := strconv.ParseInt(q.Get(pExpiry), 10, 64)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("sign url: expiry: %w", err)
	}
	if t.Size >= 0 {
		q.Set(pSize, strconv.FormatInt(t.Size, 10))
	}
	if t.Max >= 0 {
		q.Set(pMax, strconv.FormatInt(t.Max, 10))
	}
	if t.SHA256 != "" {
		q.Set(pSHA256, t.SHA256)
	}
	if t.NoClobber {
		q.Set(pNoClobber, "1")
	}
	if t.Filename != "" {
		q.Set(pFilename, t.Filename)
	}
	if len(t.Meta) > 0 {
		names := make([]string, 0, len(t.Meta))
		for k := range t.Meta {
			names = append(names, k)
		}
		slices.Sort(names)
		q.Set(pMeta, strings.Join(names, ","))
	}
	q.Set(pSig, s.mac(q, t.Meta))
	return q, time.Unix(exp, 0), nil
}

// url is the address a signed request goes to. The key in the path is what
// the broker routes on; the signed "obj" parameter must match it.
func (s *signer) url(key string, q url.Values) string {
	return s.prefix + "/" + key + "?" + q.Encode()
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
