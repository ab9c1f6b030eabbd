package broker

import (
	"reflect"
	"testing"
)

// strictCreate decodes a create request the strict, general way.
func strictCreate(body []byte) (createInput, bool) {
	req := new(createRequest)
	if e := decodeJSON(body, req); e != nil {
		return createInput{}, false
	}
	in := createInput{profile: req.Profile, checksum: req.ChecksumSHA256, metadata: req.Metadata}
	if req.Filename != nil {
		in.filename = *req.Filename
	}
	if req.ContentType != nil {
		in.contentType = *req.ContentType
	}
	if req.Size != nil {
		in.size, in.hasSize = *req.Size, true
	}
	return in, true
}

var createBodies = []struct {
	body string
	fast bool // the fast path takes it
}{
	{`{"filename":"cat.png","content_type":"image/png","size":48213,"metadata":{"album":"x"}}`, true},
	{" {\n\t\"size\" : 0 ,\r\"profile\":\"docs\", \"checksum_sha256\":\"n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\"} \n", true},
	{`{}`, true},
	{`{"metadata":{}}`, true},
	{`{"metadata":{"a":"1","b":""},"filename":""}`, true},
	{`{"size":999999999999999999}`, true},
	{`{"size":1000000000000000000}`, false},
	{`{"size":-1}`, false},
	{`{"size":01}`, false},
	{`{"size":1.0}`, false},
	{`{"size":1e3}`, false},
	{`{"size":"1"}`, false},
	{`{"size":null}`, false},
	{`{"filename":null}`, false},
	{`{"metadata":null}`, false},
	{`{"metadata":{"a":1}}`, false},
	{`{"metadata":{"a":"1","a":"2"}}`, false},
	{`{"metadata":{"a":{"b":"c"}}}`, false},
	{`{"filename":"a","filename":"b"}`, false},
	{`{"Filename":"a"}`, false},
	{`{"file\u006eame":"a"}`, false},
	{`{"filename":"a\"b"}`, false},
	{`{"filename":"Résumé.pdf"}`, false},
	{"{\"filename\":\"a\x00\"}", false},
	{"{\"filename\":\"\xff\"}", false},
	{`{"other":1}`, false},
	{`{"filename":"a"} x`, false},
	{`{"filename":"a"}{}`, false},
	{`{"filename":"a",}`, false},
	{`{"filename":"a"`, false},
	{`{"filename"}`, false},
	{`[]`, false},
	{`"x"`, false},
	{`{"size":1 2}`, false},
}

func TestDecodeCreateFast(t *testing.T) {
	for _, tc := range createBodies {
		t.Run(tc.body, func(t *testing.T) {
			var got createInput
			ok := decodeCreateFast([]byte(tc.body), &got)
			if ok != tc.fast {
				t.Fatalf("fast path took it: %v, want %v", ok, tc.fast)
			}
			if !ok {
				return
			}
			want, strictOK := strictCreate([]byte(tc.body))
			if !strictOK {
				t.Fatal("the fast path took a body the strict decoder refuses")
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("fast %+v\nstrict %+v", got, want)
			}
		})
	}
}

// FuzzDecodeCreateFast: whatever the fast path takes, the strict decoder
// takes too, with the same result.
func FuzzDecodeCreateFast(f *testing.F) {
	for _, tc := range createBodies {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got createInput
		if !decodeCreateFast(body, &got) {
			return
		}
		want, ok := strictCreate(body)
		if !ok {
			t.Fatalf("fast path took %q, which the strict decoder refuses", body)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %+v, strict %+v", body, got, want)
		}
	})
}
