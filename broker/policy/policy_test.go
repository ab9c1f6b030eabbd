package policy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/upbroker/upbroker/config"
)

func images(t testing.TB, tmpl string) *Profile {
	t.Helper()
	p, err := Compile("images", config.Profile{Backend: "local", ContentTypes: []string{"image/png", "Image/JPEG", "text/*"}, MaxSize: 1 << 20, Key: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExtension(t *testing.T) {
	cases := map[string]string{
		"cat.png": ".png", "CAT.PNG": ".png", "x.php.png": ".png", "../../etc/passwd": "", "a/b\\c.png": ".png",
		"%2e%2e%2f": "", "nul\x00.png": ".png", "png.\x00": "", "noext": "", "trailing.": "", "x.abcdefghijk": "",
		"x.abcdefghij": ".abcdefghij", ".bashrc": ".bashrc", "x.tar.gz": ".gz", "x.p-g": "", "x.pñg": "", "": "",
		strings.Repeat("a", 5000) + ".jpg": ".jpg",
	}
	for in, want := range cases {
		if got := Extension(in); got != want {
			t.Errorf("Extension(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSafeSegment(t *testing.T) {
	cases := []struct {
		in     string
		keep   bool
		reason string
	}{
		{"u-42", true, "plain"}, {"alice.smith_1", true, "dots inside"},
		{"", false, "empty"}, {".", false, "dot"}, {"..", false, "dotdot"}, {"a..b", false, "holds .."},
		{"a/b", false, "slash"}, {"_abc", false, "underscore prefix is reserved for hashes"},
		{".hidden", false, "leading dot"}, {"end.", false, "trailing dot"}, {strings.Repeat("x", 65), false, "too long"},
		{"user@example.com", false, "at sign"}, {"ü", false, "unicode"},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		got := SafeSegment(tc.in)
		if (got == tc.in) != tc.keep {
			t.Errorf("%s: SafeSegment(%q) = %q", tc.reason, tc.in, got)
		}
		if !tc.keep && (len(got) != 17 || got[0] != '_') {
			t.Errorf("%s: rewritten %q is not _+16 hex: %q", tc.reason, tc.in, got)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("%q and %q collide on %q", prev, tc.in, got)
		}
		seen[got] = tc.in
	}
	// A principal cannot take another's hashed segment by naming itself so.
	if h := SafeSegment("a/b"); SafeSegment(h) == h {
		t.Errorf("the hashed name %q must itself be rewritten", h)
	}
}

func TestKey(t *testing.T) {
	now := time.Date(2026, 11, 27, 23, 59, 0, 0, time.FixedZone("x", -5*3600))
	cases := []struct {
		tmpl, principal, filename, want string
	}{
		{"images/{principal}/{uuid}{ext}", "u-42", "cat.PNG", "images/u-42/U.png"},
		{"{profile}/{date}/{uuid}{ext}", "u", "x", "images/2026-11-28/U"},
		{"{principal}/{uuid}", "../../etc", "a.png", "_" + SafeSegment("../../etc")[1:] + "/U"},
	}
	for _, tc := range cases {
		k, err := images(t, tc.tmpl).Key(tc.principal, tc.filename, now)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(tc.want, "U")
		uuid := k[i : i+32]
		if strings.Trim(uuid, "0123456789abcdef") != "" {
			t.Fatalf("uuid %q is not 32 hex", uuid)
		}
		if got := k[:i] + "U" + k[i+32:]; got != tc.want {
			t.Errorf("Key(%q) = %q, want %q", tc.tmpl, k, tc.want)
		}
	}
}

func TestCompileRefuses(t *testing.T) {
	ok := config.Profile{Backend: "b", ContentTypes: []string{"image/png"}, MaxSize: 10}
	cases := []struct {
		name  string
		edit  func(*config.Profile)
		field string
	}{
		{"empty allow-list", func(p *config.Profile) { p.ContentTypes = nil }, "content_types"},
		{"bad type", func(p *config.Profile) { p.ContentTypes = []string{"png"} }, "content_types"},
		{"star type", func(p *config.Profile) { p.ContentTypes = []string{"*/png"} }, "content_types"},
		{"zero size", func(p *config.Profile) { p.MaxSize = 0 }, "max_size"},
		{"bad method", func(p *config.Profile) { p.Method = "patch" }, "method"},
		{"no uuid", func(p *config.Profile) { p.Key = "{principal}{ext}" }, "key"},
		{"leading slash", func(p *config.Profile) { p.Key = "/{uuid}" }, "key"},
		{"dot dot", func(p *config.Profile) { p.Key = "../{uuid}" }, "key"},
		{"double slash", func(p *config.Profile) { p.Key = "a//{uuid}" }, "key"},
		{"dot before ext", func(p *config.Profile) { p.Key = "{uuid}.{ext}" }, "key"},
		{"ext alone", func(p *config.Profile) { p.Key = "{uuid}/{ext}" }, "key"},
		{"unknown placeholder", func(p *config.Profile) { p.Key = "{uuid}{name}" }, "key"},
		{"unclosed", func(p *config.Profile) { p.Key = "{uuid" }, "key"},
		{"bad byte", func(p *config.Profile) { p.Key = "a b/{uuid}" }, "key"},
		{"tiny expiry", func(p *config.Profile) { p.Expires = time.Millisecond }, "expires"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.edit(&p)
			_, err := Compile("x", p)
			if err == nil || !strings.Contains(err.Error(), "profiles.x."+tc.field) {
				t.Fatalf("Compile = %v, want an error naming profiles.x.%s", err, tc.field)
			}
		})
	}
	p, err := Compile("x", config.Profile{Backend: "b", ContentTypes: []string{"a/b"}, MaxSize: 1, Expires: 30 * 24 * time.Hour})
	if err != nil || p.Expires != MaxExpires || p.PartSize != DefaultPartSize || p.MultipartThreshold != DefaultMultipartThreshold {
		t.Fatalf("defaults and caps: %+v %v", p, err)
	}
}

func TestTypes(t *testing.T) {
	p := images(t, "")
	cases := []struct {
		in, norm string
		allowed  bool
		errIs    error
	}{
		{"image/png", "image/png", true, nil},
		{"IMAGE/PNG", "image/png", true, nil},
		{"image/jpeg", "image/jpeg", true, nil},
		{"image/gif", "image/gif", false, nil},
		{"text/csv; charset=UTF-8", "text/csv; charset=utf-8", true, nil},
		{"text/plain", "text/plain", true, nil},
		{"image/png; foo=bar", "", false, ErrType},
		{"text/plain; charset=\"a b\"", "", false, ErrType},
		{"image/png; charset=utf-8", "", false, ErrType},
		{"not a type", "", false, errors.New("")},
		{"image/*", "", false, errors.New("")},
		{"", "", false, errors.New("")},
	}
	for _, tc := range cases {
		n, err := NormalizeType(tc.in)
		if tc.errIs != nil {
			if err == nil || (tc.errIs == ErrType) != errors.Is(err, ErrType) {
				t.Errorf("NormalizeType(%q) = %q, %v; want error (ErrType: %v)", tc.in, n, err, tc.errIs == ErrType)
			}
			continue
		}
		if err != nil || n != tc.norm {
			t.Errorf("NormalizeType(%q) = %q, %v; want %q", tc.in, n, err, tc.norm)
		}
		if p.AllowsType(n) != tc.allowed {
			t.Errorf("AllowsType(%q) = %v", n, !tc.allowed)
		}
	}
}

var (
	pngBytes  = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01")
	jpegBytes = []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00")
	htmlBytes = []byte("<!DOCTYPE html><script>alert(1)</script>")
	svgBytes  = []byte("<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"></svg>")
	pdfBytes  = []byte("%PDF-1.7\n")
	zipBytes  = []byte("PK\x03\x04\x14\x00\x00\x00")
	textBytes = []byte("just some words\n")
	binBytes  = []byte{0x00, 0x01, 0x02, 0xfe, 0xff, 0x00, 0x13}
)

func TestSniff(t *testing.T) {
	cases := []struct {
		declared string
		head     []byte
		ok       bool
	}{
		{"image/png", pngBytes, true},
		{"image/jpeg", pngBytes, true}, // same family
		{"image/png", jpegBytes, true},
		{"image/png", htmlBytes, false}, // markup declared as an image
		{"image/png", textBytes, false},
		{"image/heic", binBytes, true}, // unknown to the sniffer
		{"image/svg+xml", svgBytes, true},
		{"image/png", svgBytes, false},
		{"text/html", htmlBytes, true},
		{"text/plain", htmlBytes, false},
		{"text/plain", textBytes, true},
		{"text/csv; charset=utf-8", textBytes, true},
		{"text/plain", binBytes, false},
		{"application/json", []byte(`{"a":1}`), true},
		{"application/pdf", pdfBytes, true},
		{"application/pdf", pngBytes, false},
		{"application/pdf", htmlBytes, false},
		{"application/octet-stream", binBytes, true},
		{"application/octet-stream", textBytes, true},
		{"application/octet-stream", htmlBytes, false},
		{"application/vnd.openxmlformats-officedocument.wordprocessingml.document", zipBytes, true},
		{"application/pdf", zipBytes, false},
		{"video/mp4", htmlBytes, false},
	}
	for _, tc := range cases {
		err := Sniff(tc.declared, tc.head)
		if (err == nil) != tc.ok {
			t.Errorf("Sniff(%q, %.12q) = %v, want ok=%v", tc.declared, tc.head, err, tc.ok)
		}
	}
}

func TestCheckMetadata(t *testing.T) {
	many := map[string]string{}
	for i := range 17 {
		many[string(rune('a'+i))] = "v"
	}
	cases := []struct {
		name  string
		m     map[string]string
		field string
	}{
		{"ok", map[string]string{"album": "Summer 2026", "x-1": ""}, ""},
		{"nil", nil, ""},
		{"too many", many, "metadata"},
		{"too big", map[string]string{"a": strings.Repeat("v", 2048)}, "metadata"},
		{"upper key", map[string]string{"Album": "x"}, "metadata"},
		{"underscore key", map[string]string{"a_b": "x"}, "metadata"},
		{"empty key", map[string]string{"": "x"}, "metadata"},
		{"reserved", map[string]string{"upbrokerprincipal": "root"}, "metadata.upbrokerprincipal"},
		{"crlf", map[string]string{"a": "x\r\nX-Evil: 1"}, "metadata.a"},
		{"nul", map[string]string{"a": "x\x00"}, "metadata.a"},
		{"unicode", map[string]string{"a": "é"}, "metadata.a"},
	}
	for _, tc := range cases {
		err := CheckMetadata(tc.m)
		var fe *FieldError
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
			t.Errorf("%s: got %v, want field %s", tc.name, err, tc.field)
		}
	}
}

// FuzzKey: whatever the principal and filename, a generated key keeps the
// invariant.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"../../etc/passwd", "a/b\\c.png", "x.php.png", "%2e%2e%2f", "nul\x00.png", "..", ".", "_x", "a..b", strings.Repeat("z", 5000)} {
		f.Add(s, s)
	}
	profiles := []*Profile{images(f, ""), images(f, "{principal}{uuid}{ext}"), images(f, "u/{principal}/{date}/{profile}-{uuid}{ext}")}
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, principal, filename string) {
		for _, p := range profiles {
			k, err := p.Key(principal, filename, now)
			if err != nil {
				t.Fatalf("Key(%q, %q): %v", principal, filename, err)
			}
			if strings.Contains(k, "..") || strings.Contains(k, "//") || strings.HasPrefix(k, "/") {
				t.Fatalf("unsafe key %q", k)
			}
			for i := 0; i < len(k); i++ {
				if !safeSegmentByte(k[i]) && k[i] != '/' {
					t.Fatalf("byte %q in key %q", k[i], k)
				}
			}
		}
	})
}

func BenchmarkKey(b *testing.B) {
	p := images(b, "")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = p.Key("u-42", "cat.png", now)
	}
}

// plainType's shortcut must answer as the full parse would.
func TestPlainTypeAgreesWithParse(t *testing.T) {
	inputs := []string{"image/png", "application/vnd.api+json", "text/x-c++src", "a/b", "/png", "image/", "image", "Image/png",
		"image/png; charset=x", "image/*", "*/*", "image/png/x", "image//png", " image/png", "image/png ", "video/mp4_v2", "x-a.b/c-d.e"}
	for c := 0; c < 256; c++ {
		inputs = append(inputs, "a/"+string([]byte{byte(c)}), string([]byte{byte(c)})+"/b")
	}
	for _, in := range inputs {
		if !plainType(in) {
			continue
		}
		got, err := normalizeType(in)
		if err != nil || got != in {
			t.Errorf("plainType(%q) is true, but the full parse gives %q, %v", in, got, err)
		}
	}
	if !plainType("image/png") {
		t.Error("image/png must take the shortcut")
	}
}
