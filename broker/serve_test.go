package broker_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"

	"github.com/upbroker/upbroker/config"
)

func httptestRequest(method, path, user string) *http.Request {
	r := httptest.NewRequest(method, path, nil)
	if user != "" {
		r.Header.Set("X-Test-User", user)
	}
	return r
}

func httptestRequestBody(method, path string, body []byte) *http.Request {
	r := httptest.NewRequest(method, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func serve(h http.Handler, r *http.Request) resp {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return resp{w.Code, w.Header(), w.Body.Bytes()}
}

func codeIs(r resp, code string) string {
	var e apiErr
	if err := jsonUnmarshal(r.Body, &e); err != nil || e.Error.Code != code {
		return "body " + string(r.Body) + " does not have code " + code
	}
	return ""
}

func config_CORS(origins []string, creds bool) config.CORS {
	return config.CORS{AllowedOrigins: origins, AllowCredentials: creds}
}

var jsonUnmarshal = json.Unmarshal
