package drivertest

import (
	"strings"
	"testing"
)

// flip must change the signature while keeping its alphabet, so that a store
// refuses it for being wrong rather than malformed.
func TestFlip(t *testing.T) {
	for _, tc := range []struct{ name, in, alphabet string }{
		{"Hex", "0123456789abcdef0123456789abcdef", "0123456789abcdef"},
		{"HexLetterInMiddle", "00000000ffffffff", "0123456789abcdef"},
		{"Base64URL", "Zm9vYmFyLWJhel9xdXV4", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"},
		{"Digits", "99999", "0123456789"},
		{"UpperZ", "ZZZZ", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := flip(tc.in)
			if got == tc.in {
				t.Fatalf("flip(%q) did not change it", tc.in)
			}
			if len(got) != len(tc.in) {
				t.Fatalf("flip(%q) = %q changed the length", tc.in, got)
			}
			if strings.Trim(got, tc.alphabet) != "" {
				t.Errorf("flip(%q) = %q left the alphabet %q", tc.in, got, tc.alphabet)
			}
		})
	}
}
