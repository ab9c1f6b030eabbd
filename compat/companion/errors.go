package companion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker/policy"
	"github.com/upbroker/upbroker/drivers"
)

// apiError is one refusal. Its message is shown to the client; cause is
// logged only.
type apiError struct {
	status     int
	msg        string
	cause      error
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.msg }

func badField(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: field + ": " + fmt.Sprintf(format, args...)}
}

func errNotFound(msg string) *apiError { return &apiError{status: http.StatusNotFound, msg: msg} }

func errForbidden(msg string) *apiError { return &apiError{status: http.StatusForbidden, msg: msg} }

// writeErr writes Companion's error shape, {"error": "..."}. The same text
// goes in "message" too: @uppy/companion-client (5.x) shows a 4xx
// response's message to the user as it is, and otherwise only a status.
func writeErr(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]string{"error": e.msg, "message": e.msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// authError maps an Authenticator's failure like the broker does.
func authError(err error) *apiError {
	if errors.Is(err, auth.ErrUnavailable) {
		return &apiError{status: http.StatusServiceUnavailable, msg: "the identity provider is unavailable; try again later", cause: err}
	}
	msg := "missing or invalid credentials"
	if errors.Is(err, auth.ErrUnauthorized) && err.Error() != auth.ErrUnauthorized.Error() {
		// Authenticators promise their wrapped message is safe to show.
		msg = err.Error()
	}
	return &apiError{status: http.StatusUnauthorized, msg: msg, cause: err}
}

// storeError maps a driver's failure; notFound is the message for
// drivers.ErrNotFound (a missing upload or object).
func storeError(op string, err error, notFound string) *apiError {
	switch {
	case errors.Is(err, drivers.ErrNotFound):
		return &apiError{status: http.StatusNotFound, msg: notFound, cause: err}
	case errors.Is(err, drivers.ErrInvalid):
		return &apiError{status: http.StatusBadRequest, msg: "the store refused the request: " + op + " is not valid (check the part list and part sizes)", cause: err}
	case errors.Is(err, drivers.ErrNotSupported):
		return &apiError{status: http.StatusBadRequest, msg: op + " is not supported by this backend", cause: err}
	case errors.Is(err, drivers.ErrExists):
		return &apiError{status: http.StatusConflict, msg: "an object already exists at this key", cause: err}
	case errors.Is(err, context.Canceled):
		// The client went away; nobody reads this answer.
		return &apiError{status: http.StatusBadRequest, msg: "request cancelled", cause: err}
	case errors.Is(err, drivers.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusServiceUnavailable, msg: "the store is unavailable; try again later", cause: err}
	}
	return &apiError{status: http.StatusInternalServerError, msg: "internal error; see the server log", cause: fmt.Errorf("%s: %w", op, err)}
}

// typeError maps a content type refusal: 415 when the type is well formed
// but not allowed, 400 when it is not a media type at all.
func typeError(field, declared string, err error) *apiError {
	if errors.Is(err, policy.ErrType) {
		return &apiError{status: http.StatusUnsupportedMediaType, msg: field + ": " + err.Error()}
	}
	return &apiError{status: http.StatusBadRequest, msg: fmt.Sprintf("%s: %q is not a media type such as image/png", field, declared), cause: err}
}

func pathUnescape(s string) (string, error) { return url.PathUnescape(s) }
