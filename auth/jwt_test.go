package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"

	"github.com/upbroker/upbroker/config"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-only"

var (
	keysOnce        sync.Once
	rsaKey, rsaKey2 *rsa.PrivateKey
	ecKey           *ecdsa.PrivateKey
)

func testKeys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

func writePEM(t *testing.T, pub any) (path string, data []byte) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	data = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	path = filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// claims are valid ones for the test configs; rows change them.
func claims(mod func(jwt.MapClaims)) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"sub": "user-42",
		"iss": "https://id.example.test",
		"aud": "upbroker",
		"exp": now.Add(time.Hour).Unix(),
		"nbf": now.Add(-time.Minute).Unix(),
		"iat": now.Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func bearerReq(tok string) *http.Request {
	r := httptest.NewRequest("POST", "/v1/uploads", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

type jwtCase struct {
	name     string
	token    string
	wantID   string
	profiles []string
	wantErr  error
	wantMsg  string
}

func runJWTCases(t *testing.T, a Authenticator, cases []jwtCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(bearerReq(tc.token))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("err = %v, want %v with %q", err, tc.wantErr, tc.wantMsg)
				}
				if tc.token != "" && strings.Contains(err.Error(), tc.token) {
					t.Fatalf("error text holds the token")
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if p.ID != tc.wantID || !slices.Equal(p.Profiles, tc.profiles) || (tc.profiles == nil) != (p.Profiles == nil) {
				t.Fatalf("principal = %+v (profiles nil: %v), want %s with %#v", p, p.Profiles == nil, tc.wantID, tc.profiles)
			}
		})
	}
}

func TestJWTPublicKey(t *testing.T) {
	testKeys(t)
	rsaPath, rsaPEM := writePEM(t, &rsaKey.PublicKey)
	a, err := New(config.Auth{Mode: ModeJWT, JWT: config.JWT{
		PublicKeyFile: rsaPath, Issuer: "https://id.example.test", Audience: "upbroker",
		ProfilesClaim: "upload_profiles",
	}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	rs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, rsaKey, c, "") }
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	valid := rs(claims(nil))
	parts := strings.Split(valid, ".")
	runJWTCases(t, a, []jwtCase{
		{name: "valid", token: valid, wantID: "user-42", profiles: []string{}},
		{name: "profiles claim", token: rs(claims(func(c jwt.MapClaims) { c["upload_profiles"] = []string{"images", "docs"} })), wantID: "user-42", profiles: []string{"images", "docs"}},
		{name: "empty profiles claim", token: rs(claims(func(c jwt.MapClaims) { c["upload_profiles"] = []string{} })), wantID: "user-42", profiles: []string{}},
		{name: "profiles claim not an array", token: rs(claims(func(c jwt.MapClaims) { c["upload_profiles"] = "images" })), wantErr: ErrUnauthorized, wantMsg: "array of strings"},
		{name: "profiles claim with a number", token: rs(claims(func(c jwt.MapClaims) { c["upload_profiles"] = []any{"images", 7} })), wantErr: ErrUnauthorized, wantMsg: "array of strings"},
		{name: "audience as array", token: rs(claims(func(c jwt.MapClaims) { c["aud"] = []string{"other", "upbroker"} })), wantID: "user-42", profiles: []string{}},
		{name: "alg none", token: none, wantErr: ErrUnauthorized, wantMsg: "algorithm not accepted"},
		{name: "HS256 signed with the RSA public key", token: sign(t, jwt.SigningMethodHS256, rsaPEM, claims(nil), ""), wantErr: ErrUnauthorized, wantMsg: "algorithm not accepted"},
		{name: "signed by another RSA key", token: sign(t, jwt.SigningMethodRS256, rsaKey2, claims(nil), ""), wantErr: ErrUnauthorized, wantMsg: "signature"},
		{name: "ES256 instead of RS256", token: sign(t, jwt.SigningMethodES256, ecKey, claims(nil), ""), wantErr: ErrUnauthorized, wantMsg: "algorithm not accepted"},
		{name: "tampered payload", token: parts[0] + "." + strings.TrimRight(parts[1], "=") + "A." + parts[2], wantErr: ErrUnauthorized},
		{name: "truncated", token: parts[0] + "." + parts[1], wantErr: ErrUnauthorized, wantMsg: "malformed"},
		{name: "expired", token: rs(claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), wantErr: ErrUnauthorized, wantMsg: "expired"},
		{name: "not yet valid", token: rs(claims(func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(time.Hour).Unix() })), wantErr: ErrUnauthorized, wantMsg: "not valid yet"},
		{name: "no exp", token: rs(claims(func(c jwt.MapClaims) { delete(c, "exp") })), wantErr: ErrUnauthorized, wantMsg: "exp claim"},
		{name: "wrong issuer", token: rs(claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" })), wantErr: ErrUnauthorized, wantMsg: "issuer"},
		{name: "wrong audience", token: rs(claims(func(c jwt.MapClaims) { c["aud"] = "someone-else" })), wantErr: ErrUnauthorized, wantMsg: "audience"},
		{name: "no audience", token: rs(claims(func(c jwt.MapClaims) { delete(c, "aud") })), wantErr: ErrUnauthorized, wantMsg: "aud claim"},
		{name: "no issuer", token: rs(claims(func(c jwt.MapClaims) { delete(c, "iss") })), wantErr: ErrUnauthorized, wantMsg: "iss claim"},
		{name: "missing sub", token: rs(claims(func(c jwt.MapClaims) { delete(c, "sub") })), wantErr: ErrUnauthorized, wantMsg: "sub"},
		{name: "empty sub", token: rs(claims(func(c jwt.MapClaims) { c["sub"] = "" })), wantErr: ErrUnauthorized, wantMsg: "sub"},
		{name: "no token", token: "", wantErr: ErrUnauthorized, wantMsg: "missing"},
		{name: "garbage", token: "abc", wantErr: ErrUnauthorized, wantMsg: "malformed"},
	})
}

func TestJWTHS256AndLeeway(t *testing.T) {
	testKeys(t)
	a, err := New(config.Auth{Mode: ModeJWT, JWT: config.JWT{HS256Secret: testSecret, Leeway: 2 * time.Minute}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), c, "") }
	runJWTCases(t, a, []jwtCase{
		// Without profiles_claim the principal may use every profile.
		{name: "valid, no profiles claim configured", token: hs(claims(nil)), wantID: "user-42"},
		{name: "issuer and audience not configured", token: hs(claims(func(c jwt.MapClaims) { c["iss"] = "x"; c["aud"] = "y" })), wantID: "user-42"},
		{name: "expired within leeway", token: hs(claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })), wantID: "user-42"},
		{name: "expired beyond leeway", token: hs(claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), wantErr: ErrUnauthorized, wantMsg: "expired"},
		{name: "HS384 refused", token: sign(t, jwt.SigningMethodHS384, []byte(testSecret), claims(nil), ""), wantErr: ErrUnauthorized, wantMsg: "algorithm not accepted"},
		{name: "wrong secret", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret+"x"), claims(nil), ""), wantErr: ErrUnauthorized, wantMsg: "signature"},
		{name: "RS256 refused", token: sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), ""), wantErr: ErrUnauthorized, wantMsg: "algorithm not accepted"},
	})
}

func TestJWTES256File(t *testing.T) {
	testKeys(t)
	path, _ := writePEM(t, &ecKey.PublicKey)
	a, err := New(config.Auth{Mode: ModeJWT, JWT: config.JWT{PublicKeyFile: path}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	runJWTCases(t, a, []jwtCase{
		{name: "valid", token: sign(t, jwt.SigningMethodES256, ecKey, claims(nil), ""), wantID: "user-42"},
		{name: "RS256 refused", token: sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), ""), wantErr: ErrUnauthorized},
	})
}

func TestJWTConfig(t *testing.T) {
	testKeys(t)
	dir := t.TempDir()
	priv := filepath.Join(dir, "priv.pem")
	os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), 0o600)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	smallPath, _ := writePEM(t, &small.PublicKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384Path, _ := writePEM(t, &p384.PublicKey)
	cases := []struct {
		name    string
		cfg     config.JWT
		wantErr string
	}{
		{"nothing", config.JWT{}, "exactly one"},
		{"two sources", config.JWT{HS256Secret: testSecret, JWKSURL: "https://x/jwks"}, "exactly one"},
		{"short secret", config.JWT{HS256Secret: "short"}, "auth.jwt.hs256_secret"},
		{"missing file", config.JWT{PublicKeyFile: filepath.Join(dir, "nope.pem")}, "auth.jwt.public_key_file"},
		{"private key file", config.JWT{PublicKeyFile: priv}, "auth.jwt.public_key_file"},
		{"small RSA key", config.JWT{PublicKeyFile: smallPath}, "2048"},
		{"P-384 key", config.JWT{PublicKeyFile: p384Path}, "P-256"},
		{"jwks not a URL", config.JWT{JWKSURL: "jwks.json"}, "auth.jwt.jwks_url"},
		{"jwks over http to another host", config.JWT{JWKSURL: "http://id.example.com/jwks"}, "https"},
		{"negative leeway", config.JWT{HS256Secret: testSecret, Leeway: -time.Second}, "auth.jwt.leeway"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(config.Auth{Mode: ModeJWT, JWT: tc.cfg}, quiet())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "short") && tc.cfg.HS256Secret == "short" {
				t.Fatalf("error text holds the secret: %v", err)
			}
		})
	}
}

// jwksServer serves a key set that a test may swap, and counts fetches.
type jwksServer struct {
	mu   sync.Mutex
	body []byte
	hits atomic.Int64
	srv  *httptest.Server
}

func newJWKSServer(t *testing.T) *jwksServer {
	s := &jwksServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		b := s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) set(t *testing.T, keys map[string]any) {
	t.Helper()
	var set jwkset.JWKSMarshal
	for kid, k := range keys {
		alg := jwkset.AlgRS256
		if _, ok := k.(*ecdsa.PublicKey); ok {
			alg = jwkset.AlgES256
		}
		jwk, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: kid, ALG: alg, USE: jwkset.UseSig}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.body = b
	s.mu.Unlock()
}

func newJWKSAuth(t *testing.T, url string, unknownKIDInterval time.Duration) *JWT {
	t.Helper()
	a, err := New(config.Auth{Mode: ModeJWT, JWT: config.JWT{JWKSURL: url, JWKSTimeout: 2 * time.Second}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	j := a.(*JWT)
	if c, ok := jwksOf(j); ok {
		c.unknownKIDInterval = unknownKIDInterval
	}
	return j
}

func jwksOf(j *JWT) (*jwksCache, bool) { return j.jwks, j.jwks != nil }

func TestJWKSRotation(t *testing.T) {
	testKeys(t)
	s := newJWKSServer(t)
	s.set(t, map[string]any{"k1": &rsaKey.PublicKey, "e1": &ecKey.PublicKey})
	a := newJWKSAuth(t, s.srv.URL, 0)
	steps := []struct {
		name    string
		rotate  map[string]any
		token   string
		wantErr error
		// wantHits is the server's fetch count after the step.
		wantHits int64
	}{
		{name: "first use fetches", token: sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), "k1"), wantHits: 1},
		{name: "cached", token: sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), "k1"), wantHits: 1},
		{name: "ES256 key of the set", token: sign(t, jwt.SigningMethodES256, ecKey, claims(nil), "e1"), wantHits: 1},
		{name: "no kid tries every key", token: sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), ""), wantHits: 1},
		{name: "kid of another key", token: sign(t, jwt.SigningMethodRS256, rsaKey2, claims(nil), "k1"), wantErr: ErrUnauthorized, wantHits: 1},
		{name: "HS256 with the kid", token: sign(t, jwt.SigningMethodHS256, []byte(testSecret), claims(nil), "k1"), wantErr: ErrUnauthorized, wantHits: 1},
		{name: "rotated key is fetched on unknown kid", rotate: map[string]any{"k2": &rsaKey2.PublicKey}, token: sign(t, jwt.SigningMethodRS256, rsaKey2, claims(nil), "k2"), wantHits: 2},
		{name: "old key is gone after rotation", token: sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), "k1"), wantErr: ErrUnauthorized, wantHits: 3},
		{name: "unknown kid stays refused", token: sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), "nope"), wantErr: ErrUnauthorized, wantHits: 4},
	}
	for _, st := range steps {
		if st.rotate != nil {
			s.set(t, st.rotate)
		}
		p, err := a.Authenticate(bearerReq(st.token))
		switch {
		case st.wantErr != nil && !errors.Is(err, st.wantErr):
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
		case st.wantErr == nil && (err != nil || p.ID != "user-42"):
			t.Fatalf("%s: %+v, %v", st.name, p, err)
		}
		if got := s.hits.Load(); got != st.wantHits {
			t.Fatalf("%s: %d fetches, want %d", st.name, got, st.wantHits)
		}
	}
}

// TestJWKSUnknownKIDRateLimited: made-up kids cost at most one fetch per
// interval (here an hour, so the count cannot depend on timing).
func TestJWKSUnknownKIDRateLimited(t *testing.T) {
	testKeys(t)
	s := newJWKSServer(t)
	s.set(t, map[string]any{"k1": &rsaKey.PublicKey})
	a := newJWKSAuth(t, s.srv.URL, time.Hour)
	for i, kid := range []string{"k1", "x1", "x2", "x3", "x4", "k1"} {
		_, err := a.Authenticate(bearerReq(sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), kid)))
		if (kid == "k1") != (err == nil) {
			t.Fatalf("token %d (kid %s): %v", i, kid, err)
		}
	}
	// One first fetch, one refresh for x1; x2..x4 wait for the interval.
	if got := s.hits.Load(); got != 2 {
		t.Fatalf("%d fetches, want 2", got)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	testKeys(t)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>login</html>"))
	}))
	t.Cleanup(notJSON.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tok := sign(t, jwt.SigningMethodRS256, rsaKey, claims(nil), "k1")
	cases := []struct{ name, url string }{
		{"slow server is cut off at jwks_timeout", slow.URL},
		{"server error", failing.URL},
		{"not a key set", notJSON.URL},
		{"nothing listening", closedURL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newJWKSAuth(t, tc.url, 0)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := a.Authenticate(bearerReq(tok).WithContext(ctx))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
			if ctx.Err() != nil {
				t.Fatal("the fetch was not bounded by jwks_timeout")
			}
		})
	}
}
