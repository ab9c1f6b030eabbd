package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/upbroker/upbroker/config"
)

// minHS256Secret is RFC 7518's floor for HMAC keys: at least the hash size.
const minHS256Secret = 32

// JWT authenticates "Authorization: Bearer <jwt>" requests. The algorithm
// is pinned by the configured key: HS256 for a secret, RS256 or ES256 for a
// public key or a JWKS URL, so a token cannot choose "none" or sign with
// HMAC over an RSA public key.
type JWT struct {
	parser        *jwt.Parser
	keyfunc       func(r *http.Request) jwt.Keyfunc
	profilesClaim string
	jwks          *jwksCache // nil unless jwks_url
	methods       []string
}

func newJWT(cfg config.JWT, logger *slog.Logger) (*JWT, error) {
	set := 0
	for _, s := range []string{cfg.HS256Secret, cfg.PublicKeyFile, cfg.JWKSURL} {
		if s != "" {
			set++
		}
	}
	if set != 1 {
		return nil, errors.New("auth.jwt: set exactly one of hs256_secret, public_key_file or jwks_url")
	}
	if cfg.Leeway < 0 || cfg.Leeway > 5*time.Minute {
		return nil, fmt.Errorf("auth.jwt.leeway: must be between 0 and 5m, got %s", cfg.Leeway)
	}
	j := &JWT{profilesClaim: cfg.ProfilesClaim}
	var methods []string
	switch {
	case cfg.HS256Secret != "":
		if len(cfg.HS256Secret) < minHS256Secret {
			return nil, fmt.Errorf("auth.jwt.hs256_secret: must be at least %d bytes long", minHS256Secret)
		}
		secret := []byte(cfg.HS256Secret)
		methods = []string{"HS256"}
		j.keyfunc = func(*http.Request) jwt.Keyfunc {
			return func(*jwt.Token) (any, error) { return secret, nil }
		}
	case cfg.PublicKeyFile != "":
		key, alg, err := loadPublicKey(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth.jwt.public_key_file: %w", err)
		}
		methods = []string{alg}
		j.keyfunc = func(*http.Request) jwt.Keyfunc {
			return func(*jwt.Token) (any, error) { return key, nil }
		}
	default:
		u, err := url.Parse(cfg.JWKSURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			return nil, errors.New("auth.jwt.jwks_url: must be an absolute http(s) URL")
		}
		// Keys fetched over plain HTTP could be swapped by anyone on the
		// path, so http is only for an identity provider on this host.
		if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			return nil, errors.New("auth.jwt.jwks_url: must use https (http is allowed only for localhost)")
		}
		if cfg.JWKSRefresh < 0 || cfg.JWKSTimeout < 0 {
			return nil, errors.New("auth.jwt: jwks_refresh and jwks_timeout must not be negative")
		}
		c := newJWKSCache(cfg.JWKSURL, cfg.JWKSRefresh, cfg.JWKSTimeout, logger)
		methods = []string{"RS256", "ES256"}
		j.keyfunc = c.keyfunc
		j.jwks = c
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	j.parser = jwt.NewParser(opts...)
	j.methods = methods
	return j, nil
}

// Authenticate implements Authenticator.
func (j *JWT) Authenticate(r *http.Request) (Principal, error) {
	raw, present, err := bearerFrom(r)
	if !present {
		return Principal{}, fmt.Errorf("%w: missing bearer token", ErrUnauthorized)
	}
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	claims := jwt.MapClaims{}
	if _, err := j.parser.ParseWithClaims(raw, claims, j.keyfunc(r)); err != nil {
		if j.algRefused(raw) {
			return Principal{}, fmt.Errorf("%w: token algorithm not accepted", ErrUnauthorized)
		}
		return Principal{}, jwtError(err)
	}
	sub, err := claims.GetSubject()
	if err != nil || sub == "" {
		return Principal{}, fmt.Errorf("%w: token has no sub claim", ErrUnauthorized)
	}
	p := Principal{ID: sub}
	if j.profilesClaim != "" {
		p.Profiles, err = profilesFromClaim(claims[j.profilesClaim])
		if err != nil {
			return Principal{}, fmt.Errorf("%w: claim %s: %w", ErrUnauthorized, j.profilesClaim, err)
		}
	}
	return p, nil
}

// profilesFromClaim reads an array of strings. A token without the claim
// may use no profile: when profiles are granted by claim, absence is no
// grant, not every grant.
func profilesFromClaim(v any) ([]string, error) {
	if v == nil {
		return []string{}, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, errors.New("must be an array of strings")
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, errors.New("must be an array of strings")
		}
		out = append(out, s)
	}
	return out, nil
}

// algRefused tells whether a token that failed to parse names an
// algorithm other than the pinned ones, for a clearer message.
func (j *JWT) algRefused(raw string) bool {
	tok, _, err := jwt.NewParser().ParseUnverified(raw, jwt.MapClaims{})
	if err != nil {
		return false
	}
	alg, _ := tok.Header["alg"].(string)
	for _, m := range j.methods {
		if alg == m {
			return false
		}
	}
	return true
}

// jwtError turns a parse failure into a fixed, client-safe message: the
// library's text may quote header values chosen by the caller.
func jwtError(err error) error {
	if errors.Is(err, ErrUnavailable) {
		return fmt.Errorf("%w: token keys could not be fetched", ErrUnavailable)
	}
	msg := "invalid token"
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		msg = "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		msg = "invalid token signature"
	case errors.Is(err, jwt.ErrTokenExpired):
		msg = "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		msg = "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		msg = "wrong token issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		msg = "wrong token audience"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// The library names the claim in fixed text ("aud claim is
		// required"); no caller data is in it.
		msg = "token lacks a required claim (exp, and iss or aud when configured)"
		for _, c := range []string{"exp", "iss", "aud"} {
			if strings.Contains(err.Error(), c+" claim is required") {
				msg = "token lacks the required " + c + " claim"
			}
		}
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		msg = "token cannot be verified (unknown key or algorithm)"
	}
	return fmt.Errorf("%w: %s", ErrUnauthorized, msg)
}

// loadPublicKey reads a PEM public key (PKIX, PKCS#1 or a certificate) and
// returns the one algorithm it may verify.
func loadPublicKey(path string) (any, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, "", errors.New("no PEM block found")
	}
	var pub any
	switch block.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		cert, err = x509.ParseCertificate(block.Bytes)
		if err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, "", fmt.Errorf("PEM block %q is not a public key (a private key does not belong here)", block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("parse: %w", err)
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, "", fmt.Errorf("RSA key has %d bits, at least 2048 are required", k.N.BitLen())
		}
		return k, "RS256", nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, "", errors.New("EC key must be on curve P-256 (ES256)")
		}
		return k, "ES256", nil
	default:
		return nil, "", fmt.Errorf("unsupported key type %T (use RSA for RS256 or EC P-256 for ES256)", pub)
	}
}
