package ticket

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	keyA = []byte("0123456789abcdef-key-A")
	keyB = []byte("0123456789abcdef-key-B")
)

func sample() *Ticket {
	sum := sha256.Sum256([]byte("hello"))
	return &Ticket{
		Key: "images/anonymous/0f3c0f3c0f3c0f3c0f3c0f3c0f3c0f3c.png", Backend: "local", Profile: "images",
		Principal: "anonymous", ContentType: "image/png", Size: 48213, Checksum: sum[:],
		UploadID: "upload-1", PartSize: 16 << 20, Parts: 3, Flags: Sniff | Multipart,
		Expires: time.Unix(1_800_000_000, 0).UTC(),
	}
}

func mustCodec(t testing.TB, keys ...[]byte) *Codec {
	t.Helper()
	c, err := New(keys)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		tk   *Ticket
	}{
		{"full", sample()},
		{"minimal", &Ticket{Key: "k", Size: 1, Expires: time.Unix(1, 0).UTC()}},
		{"no checksum", func() *Ticket { s := sample(); s.Checksum = nil; return s }()},
	}
	c := mustCodec(t, keyA)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := c.Sign(tc.tk)
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(s, "+/=") {
				t.Fatalf("not base64url: %q", s)
			}
			got, err := c.Verify(s)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.tk) {
				t.Fatalf("got %+v\nwant %+v", got, tc.tk)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	signer := mustCodec(t, keyA)
	good, err := signer.Sign(sample())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	cases := []struct {
		name  string
		codec *Codec
		in    string
	}{
		{"empty", signer, ""},
		{"not base64", signer, "!!!!"},
		{"truncated", signer, good[:len(good)-4]},
		{"payload bit flipped", signer, flip(10)},
		{"mac bit flipped", signer, flip(len(raw) - 1)},
		{"version changed", signer, flip(0)},
		{"other key", mustCodec(t, keyB), good},
		{"huge", signer, strings.Repeat("A", 9000)},
		{"padded", signer, good + "=="},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.codec.Verify(tc.in); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	old := mustCodec(t, keyA)
	rotated := mustCodec(t, keyB, keyA)
	s, _ := old.Sign(sample())
	if _, err := rotated.Verify(s); err != nil {
		t.Fatalf("ticket from the old key must verify after rotation: %v", err)
	}
	s2, _ := rotated.Sign(sample())
	if _, err := old.Verify(s2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("new tickets are signed with the first key, so the old-only codec must refuse them: %v", err)
	}
	if _, err := mustCodec(t, keyB).Verify(s2); err != nil {
		t.Fatalf("first key signs: %v", err)
	}
}

func TestExpiry(t *testing.T) {
	c := mustCodec(t, keyA)
	tk := sample()
	s, _ := c.Sign(tk)
	grace := time.Hour
	cases := []struct {
		name string
		now  time.Time
		want error
	}{
		{"before expiry", tk.Expires.Add(-time.Minute), nil},
		{"within grace", tk.Expires.Add(59 * time.Minute), nil},
		{"at end of grace", tk.Expires.Add(grace), nil},
		{"after grace", tk.Expires.Add(grace + time.Second), ErrExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Check(s, tc.now, grace)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewRefusesShortKeys(t *testing.T) {
	for _, keys := range [][][]byte{nil, {[]byte("short")}, {keyA, []byte("")}} {
		if _, err := New(keys); err == nil {
			t.Fatalf("New(%q) accepted", keys)
		}
	}
}

func TestDerive(t *testing.T) {
	a, b := Derive(keyA, "backend:local"), Derive(keyA, "backend:other")
	if bytes.Equal(a, b) || bytes.Equal(a, Derive(keyB, "backend:local")) || len(a) != 32 {
		t.Fatal("derived keys must differ by purpose and by key")
	}
}

// FuzzVerify: no input makes decoding panic, and only signed input verifies.
func FuzzVerify(f *testing.F) {
	c := mustCodec(f, keyA)
	good, _ := c.Sign(sample())
	f.Add(good)
	f.Add("")
	f.Add("AQ")
	f.Add(good[:20])
	f.Fuzz(func(t *testing.T, s string) {
		tk, err := c.Verify(s)
		if err != nil {
			if tk != nil {
				t.Fatal("error with a ticket")
			}
			return
		}
		again, err := c.Sign(tk)
		if err != nil || again != s {
			t.Fatalf("verified ticket does not re-sign to itself: %v", err)
		}
	})
}

// FuzzDecode reaches the layout parser directly, which a fuzzer could never
// reach through the MAC.
func FuzzDecode(f *testing.F) {
	c := mustCodec(f, keyA)
	good, _ := c.Sign(sample())
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	f.Add(raw[:len(raw)-macLen])
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, p []byte) {
		_, _ = decode(p)
	})
}

func BenchmarkSign(b *testing.B) {
	c := mustCodec(b, keyA)
	tk := sample()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Sign(tk); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	c := mustCodec(b, keyB, keyA)
	s, _ := mustCodec(b, keyA).Sign(sample())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Verify(s); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLayoutStable pins the encoding: tickets already handed out must keep
// verifying after any change to how Sign builds them.
func TestLayoutStable(t *testing.T) {
	c := mustCodec(t, keyA)
	cases := []struct {
		name string
		tk   *Ticket
		want string
	}{
		{"multipart with checksum", sample(),
			"AQWApKfaBtX4AoCAgAgDNWltYWdlcy9hbm9ueW1vdXMvMGYzYzBmM2MwZjNjMGYzYzBmM2MwZjNjMGYzYzBmM2MucG5nBWxvY2FsBmltYWdlcwlhbm9ueW1vdXMJaW1hZ2UvcG5nCHVwbG9hZC0xICzyTbpfsKMOJug7KsW54p4bFh5cH6dCXnMEM2KTi5gkZuqjT6HJVCUJJumpiql6zlJpzFf2YLLK-h76A-x8UA8"},
		{"empty fields", &Ticket{Key: "a", Backend: "b", Profile: "p", ContentType: "text/plain; charset=utf-8", Expires: time.Unix(0, 0)},
			"AQAAAAAAAWEBYgFwABl0ZXh0L3BsYWluOyBjaGFyc2V0PXV0Zi04AABpxOg3Nd5Xgom3mrqROEhnEVtOqXzHfmymZkLCtG1HeA"},
		{"post, large size, odd principal", &Ticket{Key: "form/x.txt", Backend: "local", Profile: "form", Principal: "sha256:" + string(make([]byte, 10)),
			ContentType: "text/plain", Size: 1 << 40, Flags: Post, Expires: time.Unix(4_000_000_000, 0)},
			"AQKA0KzzDoCAgICAIAAACmZvcm0veC50eHQFbG9jYWwEZm9ybRFzaGEyNTY6AAAAAAAAAAAAAAp0ZXh0L3BsYWluAADVhTNdkq3wwxg40GKnT-tf_C2mm5WBI3t0RS8okg9txQ"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Sign(tc.tk)
			if err != nil || got != tc.want {
				t.Fatalf("Sign = %q, %v\nwant %q", got, err, tc.want)
			}
			back, err := c.Verify(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			want := *tc.tk
			want.Expires = want.Expires.UTC()
			if len(want.Checksum) == 0 {
				want.Checksum = nil
			}
			if !reflect.DeepEqual(*back, want) {
				t.Fatalf("Verify = %+v\nwant %+v", *back, want)
			}
		})
	}
}
