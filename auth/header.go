package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MaxCredentialLen bounds a credential taken from a header. JWTs with many
// claims run to a few KiB; anything near this size is an attack or a bug,
// and refusing it early keeps hashing and parsing cheap.
const MaxCredentialLen = 8192

// errBadHeader is what ParseBearer's errors wrap; its message is safe to
// show because it never quotes the input.
var errBadHeader = errors.New("malformed credential")

// ParseBearer reads the value of an Authorization header in the form
// "Bearer <token>" (RFC 6750 section 2.1): the scheme in any case, one space,
// then a b64token: letters, digits and -._~+/ with trailing '=' padding.
// Anything else (other schemes, extra spaces, control characters, commas,
// quotes, oversized values) is refused.
func ParseBearer(h string) (string, error) {
	if len(h) > len("Bearer ")+MaxCredentialLen {
		return "", fmt.Errorf("%w: authorization header too long", errBadHeader)
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || scheme == "" {
		return "", fmt.Errorf("%w: authorization header must be \"Bearer <credential>\"", errBadHeader)
	}
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: unsupported authorization scheme (use Bearer)", errBadHeader)
	}
	if err := checkToken(token); err != nil {
		return "", err
	}
	return token, nil
}

// checkToken accepts a b64token, the credential grammar of RFC 6750. It
// covers JWTs and upbroker API keys, and keeps separators, quotes and
// control characters (header or log injection) out.
func checkToken(tok string) error {
	if tok == "" {
		return fmt.Errorf("%w: empty credential", errBadHeader)
	}
	if len(tok) > MaxCredentialLen {
		return fmt.Errorf("%w: credential too long", errBadHeader)
	}
	padding := false
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c == '=':
			if i == 0 {
				return fmt.Errorf("%w: invalid character in credential", errBadHeader)
			}
			padding = true
		case padding:
			// '=' may only end the token.
			return fmt.Errorf("%w: invalid character in credential", errBadHeader)
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return fmt.Errorf("%w: invalid character in credential", errBadHeader)
		}
	}
	return nil
}

// singleHeader returns the one value of a header, refusing repeats: two
// Authorization headers are ambiguous, and proxies disagree on which wins.
func singleHeader(r *http.Request, name string) (string, bool, error) {
	vals := r.Header.Values(name)
	switch len(vals) {
	case 0:
		return "", false, nil
	case 1:
		return vals[0], true, nil
	default:
		return "", true, fmt.Errorf("%w: %s header sent more than once", errBadHeader, name)
	}
}

// bearerFrom returns the bearer token of a request, or ok=false when the
// request has no Authorization header at all.
func bearerFrom(r *http.Request) (token string, ok bool, err error) {
	h, present, err := singleHeader(r, "Authorization")
	if err != nil || !present {
		return "", present, err
	}
	tok, err := ParseBearer(h)
	return tok, true, err
}
