package file

import (
	"context"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/driver"
)

// The grant path computes fileblob's MAC and encodes the query itself; these
// tests hold it to exactly what fileblob's URLSignerHMAC and url.Values make.
func TestSignURLMatchesFileblob(t *testing.T) {
	s, err := newSigner("http://127.0.0.1:8080/v1/blob/local", []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		t    ticket
	}{
		{"put with everything", ticket{Key: "images/u-42/0f3c.png", Method: "PUT", ContentType: "image/png", Size: 48213, Max: -1,
			SHA256: "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", NoClobber: true,
			Meta: map[string]string{"upbrokerprincipal": "u-42", "upbrokerprofile": "images", "album": "a b&c=d/~%"}}},
		{"put, empty body, no metadata", ticket{Key: "a", Method: "PUT", ContentType: "text/plain; charset=utf-8", Size: 0, Max: -1}},
		{"post with a maximum", ticket{Key: "form/x.txt", Method: "POST", ContentType: "text/plain", Size: -1, Max: 1024,
			Meta: map[string]string{"a": "1", "a-b": "2", "ab": "3"}}},
		{"get with a filename", ticket{Key: "docs/r.pdf", Method: "GET", Size: -1, Max: -1, Filename: "Résumé final (2).pdf"}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, exp := s.signURL(tc.t, 5*time.Minute)
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if want := s.prefix + "/" + tc.t.Key; u.Scheme+"://"+u.Host+u.Path != want {
				t.Fatalf("URL %s does not address %s", raw, want)
			}
			q := u.Query()
			// Byte for byte what url.Values.Encode makes of the same values.
			if q.Encode() != u.RawQuery {
				t.Fatalf("query is not in url.Values.Encode form:\n got %s\nwant %s", u.RawQuery, q.Encode())
			}
			if q.Get(pExpiry) != strconv.FormatInt(exp.Unix(), 10) {
				t.Fatalf("expiry %s, returned %v", q.Get(pExpiry), exp)
			}
			// fileblob's own check accepts the signature...
			if key, err := s.fb.KeyFromURL(ctx, &url.URL{RawQuery: u.RawQuery}); err != nil || key != tc.t.Key {
				t.Fatalf("fileblob KeyFromURL = %q, %v", key, err)
			}
			// ...and it is the one URLFromKey makes for the same expiry
			// (retried if the clock's second turned in between).
			for i := 0; ; i++ {
				fu, err := s.fb.URLFromKey(ctx, tc.t.Key, &driver.SignedURLOptions{Expiry: 5 * time.Minute, Method: tc.t.Method, ContentType: tc.t.ContentType})
				if err != nil {
					t.Fatal(err)
				}
				fq := fu.Query()
				if fq.Get(pExpiry) != q.Get(pExpiry) && i < 5 {
					raw, _ = s.signURL(tc.t, 5*time.Minute)
					u, _ = url.Parse(raw)
					q = u.Query()
					continue
				}
				for _, p := range []string{pObj, pExpiry, pMethod, pType, pSignature} {
					if !reflect.DeepEqual(fq[p], q[p]) {
						t.Fatalf("%s: fileblob %q, ours %q", p, fq[p], q[p])
					}
				}
				break
			}
			// ub-sig is the MAC that verify recomputes from url.Values.
			if got, want := q.Get(pSig), s.mac(q, tc.t.Meta); got != want {
				t.Fatalf("ub-sig %s, url.Values MAC %s", got, want)
			}
			// The form fields of sign are the URL's parameters.
			v, _, err := s.sign(ctx, tc.t, 5*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			v.Del(pExpiry)
			v.Del(pSignature)
			v.Del(pSig)
			q.Del(pExpiry)
			q.Del(pSignature)
			q.Del(pSig)
			if !reflect.DeepEqual(v, q) {
				t.Fatalf("sign = %v, URL has %v", v, q)
			}
		})
	}
}

func TestAppendQueryEscape(t *testing.T) {
	inputs := []string{"", "image/png", "a b+c", "Résumé", "~-_.", "%2F", "\x00\x7f\xff"}
	for c := 0; c < 256; c++ {
		inputs = append(inputs, string([]byte{byte(c)}))
	}
	for _, in := range inputs {
		if got, want := string(appendQueryEscape(nil, in)), url.QueryEscape(in); got != want {
			t.Errorf("appendQueryEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewSignerRefusesQuery(t *testing.T) {
	for _, base := range []string{"http://h/v1/blob/x?a=1", "http://h/v1/blob/x#f"} {
		if _, err := newSigner(base, []byte("0123456789abcdef")); err == nil {
			t.Errorf("newSigner(%q) accepted a base URL the key cannot be appended to", base)
		}
	}
}

// keyChars and tempName replaced two regexps on the grant path; they must
// answer as the regexps did.
func TestKeyMatchersAgreeWithRegexps(t *testing.T) {
	chars := regexp.MustCompile(`^[A-Za-z0-9._/-]+$`)
	temp := regexp.MustCompile(`\.[0-9a-f]+\.tmp$`)
	inputs := []string{"", "a", "a/b.png", "a b", "a\x00", "é", "A-Z_0.9/", "x.tmp", ".tmp", "a.tmp", "a.1.tmp", ".1.tmp",
		"a.1f2e.tmp", "a.1F.tmp", "a.g1.tmp", "a..1.tmp", "a.1.tmp.tmp", "a.1.tmpx", "1.tmp", "a/.0.tmp", "a.1a.2b.tmp", "a.b1.tmp"}
	for c := 0; c < 256; c++ {
		inputs = append(inputs, "k"+string([]byte{byte(c)}), "a."+string([]byte{byte(c)})+".tmp")
	}
	for _, in := range inputs {
		if got, want := keyChars(in), chars.MatchString(in); got != want {
			t.Errorf("keyChars(%q) = %v, regexp says %v", in, got, want)
		}
		if got, want := tempName(in), temp.MatchString(in); got != want {
			t.Errorf("tempName(%q) = %v, regexp says %v", in, got, want)
		}
	}
}

func TestMetaHeader(t *testing.T) {
	for _, name := range []string{"upbrokerprincipal", "upbrokerprofile", "album", "a", "9lives", "-x", "x-y"} {
		if got, want := metaHeader(name), MetaHeaderPrefix+strings.ToUpper(name[:1])+name[1:]; got != want {
			t.Errorf("metaHeader(%q) = %q, want %q", name, got, want)
		}
	}
}
