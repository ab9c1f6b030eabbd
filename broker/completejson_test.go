package broker

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/upbroker/upbroker/drivers"
)

// The completion is written by hand; it must be what encoding/json (gin's
// c.JSON) makes of the same value, byte for byte.
func TestAppendCompleteMatchesEncodingJSON(t *testing.T) {
	hostile := "a\"b\\c<d>e&f\x00\x01\b\f\n\r\t\x1f\x7f é \u2028\u2029 \xff\xfe end"
	cases := []struct {
		name string
		r    completeResponse
	}{
		{"zero", completeResponse{}},
		{"typical", completeResponse{Key: "images/u-42/0f3c.png", Size: 4 << 20, ContentType: "image/png",
			ETag: "9b2cf535f27731c974343645a3985328", URL: "http://127.0.0.1:8080/v1/downloads/images/u-42/0f3c.png"}},
		{"hostile strings", completeResponse{Key: hostile, Size: 1, ContentType: hostile, ETag: hostile, URL: hostile}},
		{"negative and huge sizes", completeResponse{Key: "k", Size: -1 << 63}},
		{"max size", completeResponse{Key: "k", Size: 1<<63 - 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.r)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendComplete(nil, &tc.r); string(got) != string(want) {
				t.Fatalf("appendComplete:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestWriteCompleteLikeCJSON(t *testing.T) {
	r := &completeResponse{Key: "a/<b>.png", Size: 3, ContentType: "image/png", ETag: "e", URL: "http://h/v1/downloads/a/%3Cb%3E.png"}
	gin.SetMode(gin.ReleaseMode)
	want := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(want)
	c.JSON(http.StatusOK, r)
	got := httptest.NewRecorder()
	c, _ = gin.CreateTestContext(got)
	writeComplete(c, r)
	if got.Code != want.Code || got.Body.String() != want.Body.String() || !reflect.DeepEqual(got.Header(), want.Header()) {
		t.Fatalf("writeComplete: %d %v %s\nc.JSON: %d %v %s", got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
	}
}

// readComplete skips the decoder only for {} itself: every other body is
// decoded as strictly as before.
func TestReadComplete(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	cases := []struct {
		name      string
		ctype     string
		body      string
		wantParts []drivers.Part
		wantCode  string // "" for success
		wantField string
	}{
		{name: "empty body", ctype: "application/json", body: ""},
		{name: "empty object", ctype: "application/json", body: "{}"},
		{name: "empty object with spaces", ctype: "application/json", body: " \n{}\r\n"},
		{name: "spaced empty object", ctype: "application/json", body: "{ }"},
		{name: "parts", ctype: "application/json", body: `{"parts":[{"number":1,"etag":"abc"}]}`,
			wantParts: []drivers.Part{{Number: 1, ETag: "abc"}}},
		{name: "two objects", ctype: "application/json", body: "{}{}", wantCode: "invalid_request"},
		{name: "unknown field", ctype: "application/json", body: `{"part":[]}`, wantCode: "invalid_request", wantField: "part"},
		{name: "not JSON", ctype: "application/json", body: "{", wantCode: "invalid_request"},
		{name: "empty object as text", ctype: "text/plain", body: "{}", wantCode: "unsupported_type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := gin.CreateTestContext(httptest.NewRecorder())
			c.Request = httptest.NewRequest(http.MethodPost, "/v1/uploads/x/complete", strings.NewReader(tc.body))
			c.Request.Header.Set("Content-Type", tc.ctype)
			var req completeRequest
			e := readComplete(c, &req)
			switch {
			case tc.wantCode == "" && e != nil:
				t.Fatalf("error %s: %s", e.Code, e.Message)
			case tc.wantCode != "" && e == nil:
				t.Fatalf("accepted, want %s", tc.wantCode)
			case e != nil && (e.Code != tc.wantCode || e.Field != tc.wantField):
				t.Fatalf("error %s field %q (%s), want %s field %q", e.Code, e.Field, e.Message, tc.wantCode, tc.wantField)
			}
			if !reflect.DeepEqual(req.Parts, tc.wantParts) {
				t.Fatalf("parts %+v, want %+v", req.Parts, tc.wantParts)
			}
		})
	}
}

// BenchmarkCompleteBody compares the completion's body handling with the
// generic path it replaced (readJSON and c.JSON).
func BenchmarkCompleteBody(b *testing.B) {
	gin.SetMode(gin.ReleaseMode)
	resp := &completeResponse{Key: "images/u-42/0f3c.png", Size: 4 << 20, ContentType: "application/octet-stream",
		ETag: "9b2cf535f27731c974343645a3985328", URL: "http://127.0.0.1:8080/v1/downloads/images/u-42/0f3c.png"}
	run := func(b *testing.B, read func(*gin.Context, *completeRequest) *apiError, write func(*gin.Context, *completeResponse)) {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		body := strings.NewReader("{}")
		c.Request = httptest.NewRequest(http.MethodPost, "/v1/uploads/x/complete", body)
		c.Request.Header.Set("Content-Type", "application/json")
		b.ReportAllocs()
		for b.Loop() {
			body.Reset("{}")
			rec.Body.Reset()
			var req completeRequest
			if e := read(c, &req); e != nil {
				b.Fatal(e.Message)
			}
			write(c, resp)
		}
	}
	b.Run("readJSON+c.JSON", func(b *testing.B) {
		run(b, func(c *gin.Context, r *completeRequest) *apiError { return readJSON(c, r, true) },
			func(c *gin.Context, r *completeResponse) { c.JSON(http.StatusOK, r) })
	})
	b.Run("readComplete+writeComplete", func(b *testing.B) { run(b, readComplete, writeComplete) })
}
