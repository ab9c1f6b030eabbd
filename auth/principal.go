// Package auth decides who is calling: it turns an HTTP request into a
// Principal, or refuses it. Modes: none, api_key, jwt, forward.
package auth

import (
	"errors"
	"net/http"
)

// Principal is an authenticated caller.
type Principal struct {
	// ID names the caller: an API key's name, a JWT's sub, the forward
	// endpoint's principal, or "anonymous".
	ID string
	// Profiles the caller may use; nil means every profile.
	Profiles []string
	// Anonymous is true in mode none; rate limits then key on client IP.
	Anonymous bool
}

// Allows tells whether the principal may use a profile.
func (p Principal) Allows(profile string) bool {
	if p.Profiles == nil {
		return true
	}
	for _, q := range p.Profiles {
		if q == profile {
			return true
		}
	}
	return false
}

// Authenticator checks one request's credentials.
type Authenticator interface {
	// Authenticate returns the caller, or an error wrapping
	// ErrUnauthorized (→ 401) or ErrUnavailable (→ 503).
	Authenticate(r *http.Request) (Principal, error)
}

var (
	// ErrUnauthorized: no credential, or a bad one. The wrapped message is
	// safe to show to the client and never holds the credential.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnavailable: the identity provider (JWKS URL, forward endpoint)
	// could not be reached.
	ErrUnavailable = errors.New("identity provider unavailable")
)

// Anonymous is the principal of mode none.
var Anonymous = Principal{ID: "anonymous", Anonymous: true}

// None lets everyone in as Anonymous.
type None struct{}

// Authenticate implements Authenticator.
func (None) Authenticate(*http.Request) (Principal, error) { return Anonymous, nil }
