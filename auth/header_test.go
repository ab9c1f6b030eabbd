package auth

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseBearer(t *testing.T) {
	jwtLike := "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln"
	cases := []struct {
		name, in, want string
		ok             bool
	}{
		{"jwt", "Bearer " + jwtLike, jwtLike, true},
		{"api key", "Bearer upb_AbC-_09", "upb_AbC-_09", true},
		{"scheme in any case", "bEARER tok", "tok", true},
		{"padding", "Bearer abc==", "abc==", true},
		{"b64 chars", "Bearer a+b/c~d.e_f-g", "a+b/c~d.e_f-g", true},
		{"max length", "Bearer " + strings.Repeat("a", MaxCredentialLen), strings.Repeat("a", MaxCredentialLen), true},
		{"too long", "Bearer " + strings.Repeat("a", MaxCredentialLen+1), "", false},
		{"empty", "", "", false},
		{"scheme only", "Bearer", "", false},
		{"scheme and space", "Bearer ", "", false},
		{"two spaces", "Bearer  tok", "", false},
		{"trailing space", "Bearer tok ", "", false},
		{"tab", "Bearer\ttok", "", false},
		{"basic", "Basic dXNlcjpwYXNz", "", false},
		{"no scheme", "tok", "", false},
		{"leading space", " Bearer tok", "", false},
		{"comma list", "Bearer a, Bearer b", "", false},
		{"quote", `Bearer "tok"`, "", false},
		{"CR LF", "Bearer tok\r\nX-Evil: 1", "", false},
		{"NUL", "Bearer tok\x00", "", false},
		{"padding inside", "Bearer ab=c", "", false},
		{"padding only", "Bearer ==", "", false},
		{"unicode", "Bearer tök", "", false},
		{"unicode lookalike scheme", "Веarer tok", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBearer(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseBearer(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, errBadHeader) {
					t.Fatalf("error %v does not wrap errBadHeader", err)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("ParseBearer(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestBearerFromRepeatedHeader(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Add("Authorization", "Bearer a")
	r.Header.Add("Authorization", "Bearer b")
	if _, present, err := bearerFrom(r); !present || err == nil {
		t.Fatalf("two Authorization headers: present=%v err=%v, want a refusal", present, err)
	}
}

// FuzzParseBearer checks the parser's promises on any input: no panic, and
// an accepted token is non-empty, bounded, made of b64token characters and
// round-trips. The seed corpus in testdata/fuzz runs with every go test.
func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer upb_x", "Basic x", "Bearer a==", "Bearer \r\n", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tok, err := ParseBearer(in)
		if err != nil {
			if tok != "" {
				t.Fatalf("error with a token: %q", tok)
			}
			return
		}
		if tok == "" || len(tok) > MaxCredentialLen {
			t.Fatalf("accepted token of length %d", len(tok))
		}
		if checkToken(tok) != nil {
			t.Fatalf("accepted token %q fails checkToken", tok)
		}
		if strings.ContainsAny(tok, " \t\r\n\x00,\"") {
			t.Fatalf("accepted token %q holds a separator", tok)
		}
		again, err := ParseBearer("Bearer " + tok)
		if err != nil || again != tok {
			t.Fatalf("round trip of %q: %q, %v", tok, again, err)
		}
	})
}
