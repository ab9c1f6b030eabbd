package gcs

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file rebuilds GCS's V4 signing from Google's published description
// (https://cloud.google.com/storage/docs/authentication/canonical-requests),
// without the storage library, so a bug there cannot hide one here.

// errExpired and errSignature tell the proxy which status real GCS answers.
var (
	errExpired   = errors.New("signed URL expired")
	errSignature = errors.New("signature does not match")
)

// v4Request is what a verifier sees of a request.
type v4Request struct {
	Method string
	URL    *url.URL
	// Header returns the request's value of a (lower-case) header name,
	// "host" included.
	Header func(name string) string
}

// v4Verify checks a signed request the way GCS does: the scheme, the
// expiry, then the RSA signature over the canonical request built from the
// request's own headers. It returns the signed header names.
func v4Verify(r v4Request, pub *rsa.PublicKey, now time.Time) ([]string, error) {
	q := r.URL.Query()
	if q.Get("X-Goog-Algorithm") != "GOOG4-RSA-SHA256" {
		return nil, fmt.Errorf("%w: algorithm %q", errSignature, q.Get("X-Goog-Algorithm"))
	}
	date, err := time.Parse("20060102T150405Z", q.Get("X-Goog-Date"))
	if err != nil {
		return nil, fmt.Errorf("%w: X-Goog-Date: %v", errSignature, err)
	}
	secs, err := strconv.Atoi(q.Get("X-Goog-Expires"))
	if err != nil || secs <= 0 || secs > 7*24*3600 {
		return nil, fmt.Errorf("%w: X-Goog-Expires %q", errSignature, q.Get("X-Goog-Expires"))
	}
	if now.Before(date.Add(-time.Minute)) {
		return nil, fmt.Errorf("%w: signed in the future (%v)", errSignature, date)
	}
	if !now.Before(date.Add(time.Duration(secs) * time.Second)) {
		return nil, fmt.Errorf("%w: at %v", errExpired, date.Add(time.Duration(secs)*time.Second))
	}
	cred := q.Get("X-Goog-Credential")
	_, scope, ok := strings.Cut(cred, "/")
	if !ok || !strings.HasPrefix(scope, date.Format("20060102")+"/") || !strings.HasSuffix(scope, "/storage/goog4_request") {
		return nil, fmt.Errorf("%w: credential scope %q", errSignature, cred)
	}
	signed := strings.Split(q.Get("X-Goog-SignedHeaders"), ";")
	if !sort.StringsAreSorted(signed) || !contains(signed, "host") {
		return nil, fmt.Errorf("%w: signed headers %v (must be sorted and include host)", errSignature, signed)
	}

	var canon strings.Builder
	canon.WriteString(r.Method + "\n")
	canon.WriteString(r.URL.EscapedPath() + "\n")
	canon.WriteString(canonicalQuery(q) + "\n")
	for _, h := range signed {
		canon.WriteString(h + ":" + strings.Join(strings.Fields(r.Header(h)), " ") + "\n")
	}
	canon.WriteString("\n" + strings.Join(signed, ";") + "\n")
	payload := "UNSIGNED-PAYLOAD"
	if v := r.Header("x-goog-content-sha256"); v != "" && contains(signed, "x-goog-content-sha256") {
		payload = v
	}
	canon.WriteString(payload)

	crHash := sha256.Sum256([]byte(canon.String()))
	toSign := "GOOG4-RSA-SHA256\n" + q.Get("X-Goog-Date") + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])
	sig, err := hex.DecodeString(q.Get("X-Goog-Signature"))
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not hex", errSignature)
	}
	digest := sha256.Sum256([]byte(toSign))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return nil, fmt.Errorf("%w: %v", errSignature, err)
	}
	return signed, nil
}

// canonicalQuery sorts by name and percent-encodes everything but RFC 3986
// unreserved characters, leaving out the signature itself.
func canonicalQuery(q url.Values) string {
	var parts []string
	for k, vs := range q {
		if k == "X-Goog-Signature" {
			continue
		}
		for _, v := range vs {
			parts = append(parts, uriEncode(k)+"="+uriEncode(v))
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, "&")
}

func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// testKey makes an RSA key and a service-account JSON file holding it.
func testKey(t testing.TB) (*rsa.PrivateKey, string, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	email := "uploader@test-project.iam.gserviceaccount.com"
	sa, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "test-project",
		"private_key_id": "k1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   email,
		"client_id":      "1",
		"token_uri":      "https://oauth2.googleapis.com/token",
	})
	path := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(path, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	return key, path, email
}
