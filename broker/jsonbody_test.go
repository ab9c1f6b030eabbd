package broker

import (
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	cases := []struct {
		body  string
		ok    bool
		field string
	}{
		{`{"parts":[{"number":1,"etag":"x"}]}`, true, ""},
		{`{"parts":[{"number":1,"etag":"x","etag":"y"}]}`, false, "parts.0.etag"},
		{`{"parts":[]} x`, false, ""},
		{`{"parts":"no"}`, false, "parts"},
		{`{"parts":[{"number":"1"}]}`, false, "parts.0.number"},
		{`{"a/b":1}`, false, "a/b"},
		{`{"parts":[{"number":1,"etag":"\u005b\u005b\u005b[[[[[[[[["}]}`, true, ""}, // brackets in strings do not nest
		{strings.Repeat("[", 9) + strings.Repeat("]", 9), false, ""},
		{"{\"parts\":[{\"etag\":\"\xff\"}]}", false, "-"},
	}
	for _, tc := range cases {
		var v completeRequest
		e := decodeJSON([]byte(tc.body), &v)
		if (e == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.body, e, tc.ok)
			continue
		}
		if e != nil && tc.field != "-" && e.Field != tc.field {
			t.Errorf("%s: field %q, want %q (%s)", tc.body, e.Field, tc.field, e.Message)
		}
	}
}

// FuzzDecodeJSON: the strict decoder never panics, and everything it
// accepts is shallow enough and re-decodes the same way.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"filename":"a.png","content_type":"image/png","size":1,"metadata":{"a":"b"}}`,
		`{"size":1e400}`, `{"metadata":{"a":"1","a":"2"}}`, `[[[[[[[[[[]]]]]]]]]]`, `{"filename":"\ud800"}`, `{} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v createRequest
		if e := decodeJSON(b, &v); e != nil {
			if e.Status != 400 || e.Code != "invalid_request" {
				t.Fatalf("decoder error %+v", e)
			}
			return
		}
		if checkDepth(b) != nil || len(v.Metadata) > 0 && v.Metadata == nil {
			t.Fatal("accepted a body that is too deep")
		}
	})
}
