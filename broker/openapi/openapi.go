// Package openapi holds the OpenAPI 3 description of upbroker's HTTP API,
// kept in the repo as openapi.json and served at /openapi.json.
package openapi

import (
	_ "embed"
	"net/http"
)

//go:embed openapi.json
var Spec []byte

// Handler serves the document.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(Spec)
	})
}
