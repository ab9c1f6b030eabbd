package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

func TestPrincipalTag(t *testing.T) {
	hashed := func(id string) string {
		sum := sha256.Sum256([]byte(id))
		return "sha256:" + hex.EncodeToString(sum[:])
	}
	tests := []struct {
		name, id, want string
	}{
		{"printable ASCII kept", "user-42@example.com", "user-42@example.com"},
		{"256 bytes kept", strings.Repeat("a", 256), strings.Repeat("a", 256)},
		{"257 bytes hashed", strings.Repeat("a", 257), hashed(strings.Repeat("a", 257))},
		{"empty hashed", "", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"space hashed", "a b", hashed("a b")},
		{"newline hashed", "a\nb", hashed("a\nb")},
		{"non-ASCII hashed", "jürgen", hashed("jürgen")},
		{"DEL hashed", "a\x7f", hashed("a\x7f")},
		// An ID that looks like a tag must not collide with the tag of
		// another ID.
		{"sha256: prefix hashed", hashed("x"), hashed(hashed("x"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := PrincipalTag(tc.id)
			if got != tc.want {
				t.Fatalf("PrincipalTag(%q) = %q, want %q", tc.id, got, tc.want)
			}
			for i := 0; i < len(got); i++ {
				if got[i] < 0x21 || got[i] > 0x7e {
					t.Fatalf("PrincipalTag(%q) = %q: byte %d is not printable ASCII", tc.id, got, i)
				}
			}
		})
	}
}
