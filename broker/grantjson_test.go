package broker

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/upbroker/upbroker/drivers"
)

// The grant is written by hand; it must be what encoding/json (gin's
// c.JSON) makes of the same value, byte for byte.
func TestAppendGrantMatchesEncodingJSON(t *testing.T) {
	hostile := "a\"b\\c<d>e&f\x00\x01\b\f\n\r\t\x1f\x7f é \u2028\u2029 \xff\xfe end"
	enf := drivers.Enforced{Size: drivers.BySignature, ContentType: drivers.AfterUpload, Checksum: drivers.NotEnforced, NoOverwrite: drivers.BySignature}
	cases := []struct {
		name string
		g    grantResponse
	}{
		{"zero", grantResponse{}},
		{"put", grantResponse{ID: "AQID-_x", Key: "images/u-42/0f3c.png", Backend: "local", Profile: "images",
			ExpiresAt: time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC),
			Upload: &drivers.Grant{Method: "PUT", URL: "http://127.0.0.1:8080/v1/blob/local/images/a.png?contentType=image%2Fpng&ub-sig=x",
				Headers: map[string]string{"Content-Type": "image/png", "X-Upbroker-Meta-Album": hostile, "x-amz-meta-b": "", "A": "1"}},
			Enforced: enf, CompleteURL: "http://127.0.0.1:8080/v1/uploads/AQID-_x/complete"}},
		{"post with fields", grantResponse{ID: "id", Key: hostile, Backend: hostile, Profile: "form",
			ExpiresAt: time.Date(2026, 3, 1, 12, 5, 0, 123456000, time.UTC),
			Upload:    &drivers.Grant{Method: "POST", URL: "https://s3.example/bucket", Headers: map[string]string{}, Fields: map[string]string{"key": "k", "policy": "eyJ9", hostile: hostile}},
			Enforced:  enf}},
		{"multipart", grantResponse{ID: "id", Key: "big/x.bin", Backend: "mem", Profile: "big",
			ExpiresAt: time.Date(2026, 3, 1, 12, 5, 0, 0, time.FixedZone("x", 3600)),
			Multipart: &multipartInfo{PartSize: 16 << 20, PartCount: 7, PartsURL: "http://h/v1/uploads/id/parts"},
			Enforced:  enf, CompleteURL: "http://h/v1/uploads/id/complete"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(&tc.g)
			if err != nil {
				t.Fatal(err)
			}
			if got := appendGrant(nil, &tc.g); string(got) != string(want) {
				t.Fatalf("appendGrant:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestWriteGrantLikeCJSON(t *testing.T) {
	g := &grantResponse{ID: "x", Upload: &drivers.Grant{Method: "PUT", URL: "u", Headers: map[string]string{"a": "<b>"}}}
	gin.SetMode(gin.ReleaseMode)
	want := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(want)
	c.JSON(http.StatusCreated, g)
	got := httptest.NewRecorder()
	c, _ = gin.CreateTestContext(got)
	writeGrant(c, g)
	if got.Code != want.Code || got.Body.String() != want.Body.String() || !reflect.DeepEqual(got.Header(), want.Header()) {
		t.Fatalf("writeGrant: %d %v %s\nc.JSON: %d %v %s", got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
	}
}
