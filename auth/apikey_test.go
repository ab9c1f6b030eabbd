package auth

import (
	"errors"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/upbroker/upbroker/config"
)

func TestNewAPIKey(t *testing.T) {
	seen := map[string]bool{}
	keyRE := regexp.MustCompile(`^upb_[A-Za-z0-9_-]{43}$`)
	for i := 0; i < 20; i++ {
		key, digest, err := NewAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if !keyRE.MatchString(key) {
			t.Fatalf("key %q is not upb_ + 43 base64url characters", key)
		}
		if digest != HashAPIKey(key) || len(digest) != 64 {
			t.Fatalf("digest %q does not match the key", digest)
		}
		if seen[key] {
			t.Fatal("the same key twice")
		}
		seen[key] = true
	}
}

func TestAPIKeyAuthenticate(t *testing.T) {
	webKey, webDigest, _ := NewAPIKey()
	jobKey, jobDigest, _ := NewAPIKey()
	a, err := New(config.Auth{Mode: ModeAPIKey, APIKeys: []config.APIKey{
		{Name: "web", SHA256: webDigest},
		// Upper-case hex is accepted as well.
		{Name: "jobs", SHA256: strings.ToUpper(jobDigest), Profiles: []string{"documents"}},
	}}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	// The same key but for its last character, which stays a valid one.
	last := "A"
	if strings.HasSuffix(webKey, "A") {
		last = "B"
	}
	nearMiss := webKey[:len(webKey)-1] + last
	cases := []struct {
		name     string
		headers  [][2]string
		wantID   string
		profiles []string
		wantErr  string
	}{
		{name: "bearer", headers: [][2]string{{"Authorization", "Bearer " + webKey}}, wantID: "web"},
		{name: "x-api-key", headers: [][2]string{{"X-API-Key", webKey}}, wantID: "web"},
		{name: "second key with profiles", headers: [][2]string{{"X-API-Key", jobKey}}, wantID: "jobs", profiles: []string{"documents"}},
		{name: "lower-case scheme", headers: [][2]string{{"Authorization", "bearer " + jobKey}}, wantID: "jobs", profiles: []string{"documents"}},
		{name: "near miss", headers: [][2]string{{"Authorization", "Bearer " + nearMiss}}, wantErr: "invalid API key"},
		{name: "prefix of key", headers: [][2]string{{"X-API-Key", webKey[:20]}}, wantErr: "invalid API key"},
		{name: "key plus a byte", headers: [][2]string{{"X-API-Key", webKey + "A"}}, wantErr: "invalid API key"},
		{name: "digest sent as key", headers: [][2]string{{"X-API-Key", webDigest}}, wantErr: "invalid API key"},
		{name: "missing", wantErr: "missing API key"},
		{name: "both headers", headers: [][2]string{{"Authorization", "Bearer " + webKey}, {"X-API-Key", webKey}}, wantErr: "not both"},
		{name: "basic scheme", headers: [][2]string{{"Authorization", "Basic " + webKey}}, wantErr: "scheme"},
		{name: "empty x-api-key", headers: [][2]string{{"X-API-Key", ""}}, wantErr: "empty credential"},
		{name: "x-api-key with space", headers: [][2]string{{"X-API-Key", webKey + " x"}}, wantErr: "invalid character"},
		{name: "two x-api-key", headers: [][2]string{{"X-API-Key", webKey}, {"X-API-Key", webKey}}, wantErr: "more than once"},
		{name: "oversized", headers: [][2]string{{"X-API-Key", strings.Repeat("a", MaxCredentialLen+1)}}, wantErr: "too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/v1/uploads", nil)
			for _, h := range tc.headers {
				r.Header.Add(h[0], h[1])
			}
			p, err := a.Authenticate(r)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrUnauthorized with %q", err, tc.wantErr)
				}
				for _, secret := range []string{webKey, jobKey, nearMiss} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error text holds a key: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if p.ID != tc.wantID || p.Anonymous || !slices.Equal(p.Profiles, tc.profiles) {
				t.Fatalf("principal = %+v, want %s with %v", p, tc.wantID, tc.profiles)
			}
			if tc.profiles == nil && p.Profiles != nil {
				t.Fatalf("key without profiles must allow all (nil), got %v", p.Profiles)
			}
		})
	}
}

func TestAPIKeyConfig(t *testing.T) {
	key, digest, _ := NewAPIKey()
	_, other, _ := NewAPIKey()
	cases := []struct {
		name    string
		keys    []config.APIKey
		wantErr string
	}{
		{"no keys", nil, "auth.api_keys"},
		{"no name", []config.APIKey{{SHA256: digest}}, "auth.api_keys[0].name"},
		{"name with slash", []config.APIKey{{Name: "a/b", SHA256: digest}}, "auth.api_keys[0].name"},
		{"duplicate name", []config.APIKey{{Name: "a", SHA256: digest}, {Name: "a", SHA256: other}}, "auth.api_keys[1].name"},
		{"plain key instead of digest", []config.APIKey{{Name: "a", SHA256: key}}, "auth.api_keys[0].sha256"},
		{"short digest", []config.APIKey{{Name: "a", SHA256: digest[:62]}}, "auth.api_keys[0].sha256"},
		{"duplicate digest", []config.APIKey{{Name: "a", SHA256: digest}, {Name: "b", SHA256: digest}}, "auth.api_keys[1].sha256"},
		{"empty profile", []config.APIKey{{Name: "a", SHA256: digest, Profiles: []string{""}}}, "auth.api_keys[0].profiles[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(config.Auth{Mode: ModeAPIKey, APIKeys: tc.keys}, quiet())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), key) {
				t.Fatalf("error text holds the key: %v", err)
			}
		})
	}
}
