package drivers

import (
	"mime"
	"testing"
)

func TestContentDisposition(t *testing.T) {
	tests := []struct {
		name, filename, want string
	}{
		{"plain ASCII", "report.pdf", `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`},
		{"space", "my report.pdf", `attachment; filename="my report.pdf"; filename*=UTF-8''my%20report.pdf`},
		{"accents", "Résumé 2026.pdf", `attachment; filename="R_sum_ 2026.pdf"; filename*=UTF-8''R%C3%A9sum%C3%A9%202026.pdf`},
		{"quote and backslash", `a"b\c.txt`, `attachment; filename="a_b_c.txt"; filename*=UTF-8''a%22b%5Cc.txt`},
		{"control bytes", "a\r\nb.txt", `attachment; filename="a__b.txt"; filename*=UTF-8''a%0D%0Ab.txt`},
		{"one underscore per rune", "日本.txt", `attachment; filename="__.txt"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt`},
		{"slash escaped", "a/b.txt", `attachment; filename="a/b.txt"; filename*=UTF-8''a%2Fb.txt`},
		{"equals and semicolon escaped", "a=b;c.txt", `attachment; filename="a=b;c.txt"; filename*=UTF-8''a%3Db%3Bc.txt`},
		{"percent escaped", "100%.txt", `attachment; filename="100%.txt"; filename*=UTF-8''100%25.txt`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ContentDisposition(tc.filename)
			if got != tc.want {
				t.Fatalf("ContentDisposition(%q) =\n %s\nwant\n %s", tc.filename, got, tc.want)
			}
			// Browsers must be able to parse it: the header is signed
			// into the URL, so a broken one cannot be fixed later.
			disp, params, err := mime.ParseMediaType(got)
			if err != nil || disp != "attachment" {
				t.Fatalf("mime.ParseMediaType(%q) = %q, %v", got, disp, err)
			}
			if params["filename"] != tc.filename {
				t.Fatalf("parsed filename = %q, want %q", params["filename"], tc.filename)
			}
		})
	}
}
