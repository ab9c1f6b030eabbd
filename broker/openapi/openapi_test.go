package openapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/upbroker/upbroker/broker/openapi"
)

// The document must load and validate as OpenAPI 3.0 (kin-openapi also
// checks every example against its schema), and be served byte for byte.
// internal/apitest checks that the broker's traffic matches it.
func TestDocument(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI[:2] != "3." {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}

	rec := httptest.NewRecorder()
	openapi.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), openapi.Spec) {
		t.Error("served document differs from openapi.json")
	}
}
