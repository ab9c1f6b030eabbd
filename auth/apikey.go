package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/upbroker/upbroker/config"
)

// APIKeyPrefix starts every key that NewAPIKey makes, so that a leaked key
// is easy to recognise (secret scanners, log greps).
const APIKeyPrefix = "upb_"

// NewAPIKey makes a fresh key (32 random bytes, base64url, prefixed) and the
// hex SHA-256 digest that goes into auth.api_keys[].sha256.
func NewAPIKey() (key, digest string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("api key: read random bytes: %w", err)
	}
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashAPIKey(key), nil
}

// HashAPIKey is the hex SHA-256 of a key, as written in the config. A plain
// hash is enough (no salt, no slow KDF) because keys are 256 random bits,
// not passwords.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

type apiKeyEntry struct {
	digest   [sha256.Size]byte
	name     string
	profiles []string
}

// APIKeys authenticates requests that carry one of the configured keys in
// "Authorization: Bearer <key>" or "X-API-Key: <key>".
type APIKeys struct {
	keys []apiKeyEntry
}

func newAPIKeys(cfg []config.APIKey) (*APIKeys, error) {
	if len(cfg) == 0 {
		return nil, fmt.Errorf("auth.api_keys: at least one key is required in mode api_key (make one with `upbroker apikey new`)")
	}
	a := &APIKeys{}
	names := map[string]bool{}
	digests := map[string]bool{}
	for i, k := range cfg {
		field := fmt.Sprintf("auth.api_keys[%d]", i)
		name := strings.TrimSpace(k.Name)
		if name == "" {
			return nil, fmt.Errorf("%s.name: required (it becomes the principal)", field)
		}
		if name != k.Name || strings.ContainsAny(name, "\x00\r\n\t/\\") {
			return nil, fmt.Errorf("%s.name: must not contain spaces at the ends, slashes or control characters", field)
		}
		if names[name] {
			return nil, fmt.Errorf("%s.name: %q is used by another key", field, name)
		}
		names[name] = true
		d := strings.ToLower(strings.TrimSpace(k.SHA256))
		raw, err := hex.DecodeString(d)
		if err != nil || len(raw) != sha256.Size {
			// Never echo the value: someone may have pasted the key itself.
			return nil, fmt.Errorf("%s.sha256: must be 64 hex digits, the SHA-256 of the key, never the key itself (make one with `upbroker apikey new`)", field)
		}
		if digests[d] {
			return nil, fmt.Errorf("%s.sha256: the same digest is configured twice", field)
		}
		digests[d] = true
		e := apiKeyEntry{name: name}
		copy(e.digest[:], raw)
		for j, p := range k.Profiles {
			if strings.TrimSpace(p) == "" {
				return nil, fmt.Errorf("%s.profiles[%d]: empty profile name", field, j)
			}
		}
		if len(k.Profiles) > 0 {
			e.profiles = append([]string(nil), k.Profiles...)
		}
		a.keys = append(a.keys, e)
	}
	return a, nil
}

// Authenticate implements Authenticator.
func (a *APIKeys) Authenticate(r *http.Request) (Principal, error) {
	key, err := apiKeyFrom(r)
	if err != nil {
		return Principal{}, err
	}
	sum := sha256.Sum256([]byte(key))
	// Compare against every digest, without an early exit, so the time
	// taken says nothing about which key (if any) matched.
	match := -1
	for i := range a.keys {
		eq := subtle.ConstantTimeCompare(sum[:], a.keys[i].digest[:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return Principal{}, fmt.Errorf("%w: invalid API key", ErrUnauthorized)
	}
	k := a.keys[match]
	return Principal{ID: k.name, Profiles: append([]string(nil), k.profiles...)}, nil
}

// apiKeyFrom takes the key from exactly one of the two headers.
func apiKeyFrom(r *http.Request) (string, error) {
	bearer, hasBearer, berr := bearerFrom(r)
	xkey, hasX, xerr := singleHeader(r, "X-API-Key")
	switch {
	case hasBearer && hasX:
		return "", fmt.Errorf("%w: send the API key in Authorization or X-API-Key, not both", ErrUnauthorized)
	case hasBearer:
		if berr != nil {
			return "", fmt.Errorf("%w: %w", ErrUnauthorized, berr)
		}
		return bearer, nil
	case hasX:
		if xerr == nil {
			xerr = checkToken(xkey)
		}
		if xerr != nil {
			return "", fmt.Errorf("%w: %w", ErrUnauthorized, xerr)
		}
		return xkey, nil
	default:
		return "", fmt.Errorf("%w: missing API key (send Authorization: Bearer <key> or X-API-Key)", ErrUnauthorized)
	}
}
