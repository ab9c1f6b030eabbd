package s3compat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

func TestParse(t *testing.T) {
	ok := func(extra map[string]string) drivers.Settings {
		s := drivers.Settings{"bucket": "uploads"}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	cases := []struct {
		name    string
		in      drivers.Settings
		field   string // the key the error must name; "" means no error
		check   func(Settings) bool
		noValue string // a value that must not appear in the error
	}{
		{name: "minimal", in: ok(nil), check: func(s Settings) bool {
			return s.Region == DefaultRegion && s.Endpoint == nil && s.SigningEndpoint() == nil && !s.PathStyle
		}},
		{name: "endpoints", in: ok(map[string]string{"endpoint": "http://127.0.0.1:9000/", "public_endpoint": "https://files.example.com"}), check: func(s Settings) bool {
			return s.Endpoint.String() == "http://127.0.0.1:9000" && s.SigningEndpoint().String() == "https://files.example.com"
		}},
		{name: "signing falls back to endpoint", in: ok(map[string]string{"endpoint": "http://minio:9000"}), check: func(s Settings) bool {
			return s.SigningEndpoint().Host == "minio:9000"
		}},
		{name: "path style", in: ok(map[string]string{"path_style": "true"}), check: func(s Settings) bool { return s.PathStyle }},
		{name: "keys", in: ok(map[string]string{"access_key": "a", "secret_key": "b", "session_token": "c"}), check: func(s Settings) bool {
			return s.AccessKey == "a" && s.SecretKey == "b" && s.SessionToken == "c"
		}},
		{name: "no bucket", in: drivers.Settings{}, field: "bucket"},
		{name: "bad bucket", in: drivers.Settings{"bucket": "Uploads_1"}, field: "bucket"},
		{name: "short bucket", in: drivers.Settings{"bucket": "ab"}, field: "bucket"},
		{name: "endpoint without scheme", in: ok(map[string]string{"endpoint": "127.0.0.1:9000"}), field: "endpoint"},
		{name: "endpoint with a path", in: ok(map[string]string{"endpoint": "http://h/uploads"}), field: "endpoint"},
		{name: "endpoint with credentials", in: ok(map[string]string{"endpoint": "http://user:hunter2@h"}), field: "endpoint", noValue: "hunter2"},
		{name: "bad public endpoint", in: ok(map[string]string{"public_endpoint": "ftp://h"}), field: "public_endpoint"},
		{name: "bad path style", in: ok(map[string]string{"path_style": "yes please"}), field: "path_style"},
		{name: "secret without access key", in: ok(map[string]string{"secret_key": "s3cr3t-value"}), field: "access_key", noValue: "s3cr3t-value"},
		{name: "token without keys", in: ok(map[string]string{"session_token": "tok-value"}), field: "session_token", noValue: "tok-value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.in)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !tc.check(s) {
					t.Fatalf("Parse = %+v", s)
				}
				return
			}
			if !errors.Is(err, drivers.ErrConfig) || !strings.Contains(err.Error(), tc.field+":") && !strings.Contains(err.Error(), tc.field+" ") {
				t.Fatalf("Parse error %v should wrap ErrConfig and name %q", err, tc.field)
			}
			if tc.noValue != "" && strings.Contains(err.Error(), tc.noValue) {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
}

func TestMapError(t *testing.T) {
	refused := &url.Error{Op: "Put", URL: "http://127.0.0.1:9/b/k", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	cases := []struct {
		name string
		se   StoreError
		err  error
		want error // nil: no drivers.Err* at all
	}{
		{"no such key", StoreError{"NoSuchKey", 404}, errors.New("x"), drivers.ErrNotFound},
		{"head 404", StoreError{"NotFound", 404}, errors.New("x"), drivers.ErrNotFound},
		{"no such upload", StoreError{"NoSuchUpload", 404}, errors.New("x"), drivers.ErrNotFound},
		{"no such bucket", StoreError{"NoSuchBucket", 404}, errors.New("x"), drivers.ErrUnavailable},
		{"precondition", StoreError{"PreconditionFailed", 412}, errors.New("x"), drivers.ErrExists},
		{"invalid part", StoreError{"InvalidPart", 400}, errors.New("x"), drivers.ErrInvalid},
		{"too small", StoreError{"EntityTooSmall", 400}, errors.New("x"), drivers.ErrInvalid},
		{"bad credentials", StoreError{"InvalidAccessKeyId", 403}, errors.New("x"), drivers.ErrUnavailable},
		{"server error", StoreError{"InternalError", 500}, errors.New("x"), drivers.ErrUnavailable},
		{"unknown 503", StoreError{"", 503}, errors.New("x"), drivers.ErrUnavailable},
		{"unknown 400", StoreError{"", 400}, errors.New("x"), drivers.ErrInvalid},
		{"unknown 409", StoreError{"Weird", 409}, errors.New("x"), nil},
		{"connection refused", StoreError{}, refused, drivers.ErrUnavailable},
		{"timeout", StoreError{}, fmt.Errorf("op: %w", context.DeadlineExceeded), drivers.ErrUnavailable},
		{"caller cancelled", StoreError{}, fmt.Errorf("op: %w", context.Canceled), nil},
		{"SDK validation", StoreError{}, errors.New("missing required field"), nil},
	}
	all := []error{drivers.ErrNotFound, drivers.ErrExists, drivers.ErrUnavailable, drivers.ErrInvalid}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := MapError(`http://127.0.0.1:9 (bucket "b")`, "stat", "k", tc.se, tc.err)
			for _, e := range all {
				if errors.Is(got, e) != (e == tc.want) {
					t.Fatalf("MapError = %v; errors.Is(%v) = %v, want only %v", got, e, errors.Is(got, e), tc.want)
				}
			}
			if !errors.Is(got, tc.err) {
				t.Fatalf("MapError lost the cause: %v", got)
			}
			if !strings.Contains(got.Error(), "127.0.0.1:9") {
				t.Fatalf("message should name the store: %v", got)
			}
		})
	}
	if MapError("w", "stat", "k", StoreError{}, nil) != nil {
		t.Fatal("MapError(nil) should be nil")
	}
}

func TestETag(t *testing.T) {
	for _, in := range []string{`"abc-2"`, `abc-2`, ` "abc-2" `} {
		if TrimETag(in) != "abc-2" || QuoteETag(in) != `"abc-2"` {
			t.Fatalf("TrimETag(%q) = %q, QuoteETag = %q", in, TrimETag(in), QuoteETag(in))
		}
	}
}

func TestExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		want      time.Duration
		temporary bool
		expires   time.Time
		got       time.Duration
		err       error
	}{
		{"plain", 5 * time.Minute, false, time.Time{}, 5 * time.Minute, nil},
		{"sub-second rounds down", 1500 * time.Millisecond, false, time.Time{}, time.Second, nil},
		{"below one second", 200 * time.Millisecond, false, time.Time{}, time.Second, nil},
		{"clamped", time.Hour, true, now.Add(10 * time.Minute), 10 * time.Minute, nil},
		{"temporary without expiry", time.Hour, true, time.Time{}, time.Hour, nil},
		{"expired creds", time.Hour, true, now.Add(500 * time.Millisecond), 0, drivers.ErrUnavailable},
		{"negative", -time.Second, false, time.Time{}, 0, drivers.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, at, err := Expiry(now, tc.want, tc.temporary, tc.expires)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || d != tc.got || !at.Equal(now.Add(tc.got)) {
				t.Fatalf("Expiry = %v %v %v, want %v", d, at, err, tc.got)
			}
		})
	}
}

func TestChecks(t *testing.T) {
	cases := []struct {
		name string
		err  error
	}{
		{"put too large", CheckPut(drivers.Constraints{Size: MaxSinglePut + 1})},
		{"put negative", CheckPut(drivers.Constraints{Size: -1})},
		{"part zero", CheckPart(0, 1)},
		{"part too large", CheckPart(1, MaxPartSize+1)},
		{"no parts", CheckParts(nil)},
		{"part without etag", CheckParts([]drivers.Part{{Number: 1, ETag: `""`}})},
		{"repeated part", CheckParts([]drivers.Part{{Number: 2, ETag: "a"}, {Number: 2, ETag: "b"}})},
	}
	for _, tc := range cases {
		if !errors.Is(tc.err, drivers.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, tc.err)
		}
	}
	if err := CheckPut(drivers.Constraints{Size: MaxSinglePut}); err != nil {
		t.Errorf("5 GiB PUT refused: %v", err)
	}
	if err := CheckParts([]drivers.Part{{Number: 2, ETag: `"b"`}, {Number: 1, ETag: "a"}}); err != nil {
		t.Errorf("good parts refused: %v", err)
	}
}

func TestPostFields(t *testing.T) {
	fields, conds := PostFields("a/b.png", drivers.Constraints{ContentType: "image/png", MaxSize: 99, Metadata: map[string]string{"k": "v"}})
	if fields["Content-Type"] != "image/png" || fields["x-amz-meta-k"] != "v" {
		t.Fatalf("fields = %v", fields)
	}
	s := fmt.Sprint(conds)
	for _, want := range []string{"content-length-range 0 99", "key:a/b.png", "Content-Type:image/png", "x-amz-meta-k:v"} {
		if !strings.Contains(s, want) {
			t.Fatalf("conditions %s lack %q", s, want)
		}
	}
}
