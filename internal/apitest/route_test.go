package apitest

import (
	"net/http/httptest"
	"testing"
)

// Keys take the rest of the path: the validator must see the whole key,
// slashes and escapes resolved, as the broker's {key...} route does.
func TestRestOfPathParameters(t *testing.T) {
	v, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, target string
		route          string
		params         map[string]string
	}{
		{"GET", "/v1/downloads/a.png", "/v1/downloads/{key}", map[string]string{"key": "a.png"}},
		{"GET", "/v1/downloads/images/u-1/a%20b.png", "/v1/downloads/{key}", map[string]string{"key": "images/u-1/a b.png"}},
		{"PUT", "/v1/blob/local/images/u-1/x.png?sig=1", "/v1/blob/{backend}/{key}", map[string]string{"backend": "local", "key": "images/u-1/x.png"}},
		{"GET", "/demo/js/app.js", "/demo/{file}", map[string]string{"file": "js/app.js"}},
		{"GET", "/v1/uploads/tk%2F1/parts", "/v1/uploads/{id}/parts", map[string]string{"id": "tk/1"}},
		{"GET", "/s3/multipart/u1/batch?key=k&partNumbers=1", "/s3/multipart/{uploadId}/batch", map[string]string{"uploadId": "u1"}},
		{"GET", "/s3/multipart/u1/7?key=k", "/s3/multipart/{uploadId}/{partNumber}", map[string]string{"uploadId": "u1", "partNumber": "7"}},
	}
	for _, tc := range tests {
		t.Run(tc.target, func(t *testing.T) {
			ex, _, err := v.prepare(httptest.NewRequest(tc.method, tc.target, nil), true)
			if err != nil {
				t.Fatal(err)
			}
			if ex.route == nil {
				t.Fatalf("no route: %v", ex.routeErr)
			}
			if ex.route.Path != tc.route {
				t.Errorf("route %s, want %s", ex.route.Path, tc.route)
			}
			for k, want := range tc.params {
				if got := ex.input.PathParams[k]; got != want {
					t.Errorf("param %s = %q, want %q", k, got, want)
				}
			}
			if ex.reqErr != nil {
				t.Errorf("request judged invalid: %v", ex.reqErr)
			}
		})
	}
}
