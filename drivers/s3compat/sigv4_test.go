package s3compat

import (
	"crypto/hmac"
	"crypto/sha256"
	"net/url"
	"strings"
	"testing"
	"time"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// probeURL is what an SDK returns for the probe key on this address.
func probeURL(base, region string) string {
	return base + ProbeKey + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=probe%2F20260301%2F" + region + "%2Fs3%2Faws4_request&X-Amz-Signature=00"
}

// TestPresignAWSExample is the worked example of AWS's documentation for
// query-string authentication ("Example: Presigned URL", GET test.txt from
// examplebucket, signed 2013-05-24 for 86400 s): an oracle that owes
// nothing to either SDK.
func TestPresignAWSExample(t *testing.T) {
	p, err := NewPresigner(mustURL(t, probeURL("https://examplebucket.s3.amazonaws.com/", "us-east-1")), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	got, ok := p.Presign(Credentials{AccessKey: "AKIAIOSFODNN7EXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}, &SignRequest{
		Method:  "GET",
		Key:     "test.txt",
		Expires: 86400 * time.Second,
		Time:    time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC),
	})
	want := "https://examplebucket.s3.amazonaws.com/test.txt" +
		"?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
		"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request" +
		"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host" +
		"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	if !ok || got != want {
		t.Fatalf("Presign =\n%s (%v)\nwant\n%s", got, ok, want)
	}
}

func TestSigningKeyHMACMatchesCryptoHMAC(t *testing.T) {
	p := &Presigner{region: "eu-west-1"}
	msgs := []string{"", "a", strings.Repeat("x", 63), strings.Repeat("y", 64), strings.Repeat("z", 300)}
	for _, secret := range []string{"s", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"} {
		k := p.key(secret, []byte("20260301"))
		// The derived key, by the definition, with crypto/hmac.
		want := hmacSum(hmacSum(hmacSum(hmacSum([]byte("AWS4"+secret), "20260301"), "eu-west-1"), "s3"), "aws4_request")
		for _, m := range msgs {
			got, _ := k.sign(nil, []byte(m))
			h := hmac.New(sha256.New, want)
			h.Write([]byte(m))
			if !hmac.Equal(got[:], h.Sum(nil)) {
				t.Fatalf("secret %q, message of %d bytes: padded HMAC differs from crypto/hmac", secret, len(m))
			}
		}
	}
}

func TestSigningKeyCache(t *testing.T) {
	p := &Presigner{region: "us-east-1"}
	cases := []struct {
		name, secret, day string
		same              bool // the previous step's key is reused
	}{
		{"first use", "s1", "20260301", false},
		{"same day, same secret", "s1", "20260301", true},
		{"the UTC date changed", "s1", "20260302", false},
		{"rotated secret", "s2", "20260302", false},
		{"same again", "s2", "20260302", true},
	}
	var prev *signingKey
	for _, tc := range cases {
		k := p.key(tc.secret, []byte(tc.day))
		if (k == prev) != tc.same {
			t.Fatalf("%s: reused = %v, want %v", tc.name, k == prev, tc.same)
		}
		if k.day != tc.day || k.secret != tc.secret {
			t.Fatalf("%s: key for %s/%s", tc.name, k.day, k.secret)
		}
		prev = k
	}
}

// TestPresignUsesUTCDate: the date in the scope and X-Amz-Date is UTC's,
// whatever the zone of the time given.
func TestPresignUsesUTCDate(t *testing.T) {
	p, err := NewPresigner(mustURL(t, probeURL("http://127.0.0.1:9000/b/", "us-east-1")), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	zone := time.FixedZone("UTC+10", 10*3600)
	at := time.Date(2026, 3, 2, 8, 30, 0, 0, zone) // 2026-03-01 22:30 UTC
	u, ok := p.Presign(Credentials{AccessKey: "a", SecretKey: "s"}, &SignRequest{Method: "GET", Key: "k", Expires: time.Minute, Time: at})
	if !ok {
		t.Fatal("not signed")
	}
	q := mustURL(t, u).Query()
	if q.Get("X-Amz-Date") != "20260301T223000Z" || !strings.HasPrefix(q.Get("X-Amz-Credential"), "a/20260301/") {
		t.Fatalf("date %s credential %s", q.Get("X-Amz-Date"), q.Get("X-Amz-Credential"))
	}
}

func TestNewPresignerAddresses(t *testing.T) {
	cases := []struct {
		probe, region      string
		base, prefix, host string
		err                bool
	}{
		{probe: probeURL("http://127.0.0.1:9000/uploads/", "us-east-1"), region: "us-east-1", base: "http://127.0.0.1:9000/uploads/", prefix: "/uploads/", host: "127.0.0.1:9000"},
		{probe: probeURL("https://uploads.s3.eu-west-1.amazonaws.com/", "eu-west-1"), region: "eu-west-1", base: "https://uploads.s3.eu-west-1.amazonaws.com/", prefix: "/", host: "uploads.s3.eu-west-1.amazonaws.com"},
		{probe: probeURL("https://cdn.example.com:443/uploads/", "us-east-1"), region: "us-east-1", base: "https://cdn.example.com:443/uploads/", prefix: "/uploads/", host: "cdn.example.com"},
		{probe: probeURL("http://cdn.example.com:80/uploads/", "us-east-1"), region: "us-east-1", base: "http://cdn.example.com:80/uploads/", prefix: "/uploads/", host: "cdn.example.com"},
		{probe: probeURL("http://[::1]:9000/uploads/", "us-east-1"), region: "us-east-1", base: "http://[::1]:9000/uploads/", prefix: "/uploads/", host: "[::1]:9000"},
		{probe: probeURL("https://[::1]:443/uploads/", "us-east-1"), region: "us-east-1", err: true},
		{probe: probeURL("http://127.0.0.1:9000/uploads/", "us-east-1"), region: "eu-west-1", err: true}, // another scope
		{probe: strings.Replace(probeURL("http://h/b/", "us-east-1"), "%2Fs3%2F", "%2Fs3-outposts%2F", 1), region: "us-east-1", err: true},
		{probe: "http://127.0.0.1:9000/uploads/other?X-Amz-Algorithm=AWS4-HMAC-SHA256", region: "us-east-1", err: true},
		{probe: strings.Replace(probeURL("http://h/b/", "us-east-1"), "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", 1), region: "us-east-1", err: true},
	}
	for _, tc := range cases {
		p, err := NewPresigner(mustURL(t, tc.probe), tc.region)
		if tc.err {
			if err == nil {
				t.Errorf("%s: want an error", tc.probe)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.probe, err)
			continue
		}
		if p.base != tc.base || p.uriPrefix != tc.prefix || p.host != tc.host {
			t.Errorf("%s: base %q prefix %q host %q", tc.probe, p.base, p.uriPrefix, p.host)
		}
	}
}

// TestPresignDeclines lists what the fast path leaves to the SDK.
func TestPresignDeclines(t *testing.T) {
	p, err := NewPresigner(mustURL(t, probeURL("http://127.0.0.1:9000/b/", "us-east-1")), "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	creds := Credentials{AccessKey: "a", SecretKey: "s"}
	ok := SignRequest{Method: "PUT", Key: "k", Expires: time.Minute, Time: time.Now(), Headers: []Header{{"content-type", "text/plain"}}}
	cases := []struct {
		name  string
		creds Credentials
		edit  func(*SignRequest)
		want  bool
	}{
		{"plain", creds, func(*SignRequest) {}, true},
		{"anonymous", Credentials{}, func(*SignRequest) {}, false},
		{"no secret", Credentials{AccessKey: "a"}, func(*SignRequest) {}, false},
		{"empty key", creds, func(r *SignRequest) { r.Key = "" }, false},
		{"invalid UTF-8 key", creds, func(r *SignRequest) { r.Key = "a\xffb" }, false},
		{"tab in a value", creds, func(r *SignRequest) { r.Headers = []Header{{"x-amz-meta-a", "x\ty"}} }, false},
		{"non-ASCII value", creds, func(r *SignRequest) { r.Headers = []Header{{"x-amz-meta-a", "été"}} }, false},
		{"upper-case name", creds, func(r *SignRequest) { r.Headers = []Header{{"Content-Type", "a/b"}} }, false},
		{"host given", creds, func(r *SignRequest) { r.Headers = []Header{{"host", "evil"}} }, false},
		{"under a second", creds, func(r *SignRequest) { r.Expires = time.Millisecond }, false},
	}
	for _, tc := range cases {
		r := ok
		tc.edit(&r)
		if _, got := p.Presign(tc.creds, &r); got != tc.want {
			t.Errorf("%s: signed = %v, want %v", tc.name, got, tc.want)
		}
	}
	var nilP *Presigner
	if _, got := nilP.Presign(creds, &ok); got {
		t.Error("a nil Presigner signed")
	}
}

func TestAppendTrimmed(t *testing.T) {
	for in, want := range map[string]string{"": "", "a": "a", "  a  b   c ": "a b c", "a b": "a b", "   ": ""} {
		if got := string(appendTrimmed(nil, in)); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}
