package broker

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/upbroker/upbroker/drivers"
)

// apiError is every error the API answers, in one JSON shape.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfter sets the Retry-After header when positive.
	RetryAfter time.Duration `json:"-"`
	// cause is logged, never shown: it may hold store details.
	cause error
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func badRequest(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Field: field, Message: fmt.Sprintf(format, args...)}
}

func errNotFound(msg string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: msg}
}

func errForbidden(msg string) *apiError {
	return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: msg}
}

func errTooLarge(field, msg string) *apiError {
	return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Field: field, Message: msg}
}

func errInternal(cause error) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error", cause: cause}
}

// storeError maps a driver's error to the API. notFound is the status a
// missing object means on this route (404 for a download, 409 for a
// completion before the upload).
func storeError(backend, op string, err error, notFound *apiError) *apiError {
	switch {
	case errors.Is(err, drivers.ErrUnavailable):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "backend_unavailable",
			Message: "backend " + backend + " is unavailable (" + op + "); try again later", cause: err}
	case errors.Is(err, drivers.ErrNotFound):
		ae := *notFound
		ae.cause = err
		return &ae
	case errors.Is(err, drivers.ErrExists):
		return &apiError{Status: http.StatusConflict, Code: "exists", Message: "the object already exists", cause: err}
	case errors.Is(err, drivers.ErrInvalid):
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "rejected", Message: "backend " + backend + " refused the request (" + op + ")", cause: err}
	case errors.Is(err, drivers.ErrNotSupported):
		return badRequest("", "backend %s does not support %s", backend, op)
	}
	// An unclassified failure of a store is still the store's failure, not
	// a bug of ours: the client should retry later.
	return &apiError{Status: http.StatusServiceUnavailable, Code: "backend_unavailable",
		Message: "backend " + backend + " failed (" + op + "); try again later", cause: err}
}

type errorBody struct {
	Error *apiError `json:"error"`
}

// abort answers an error and stops the handler chain.
func abort(c *gin.Context, e *apiError) {
	if e.RetryAfter > 0 {
		secs := int64((e.RetryAfter + time.Second - 1) / time.Second)
		c.Header("Retry-After", strconv.FormatInt(secs, 10))
	}
	if e.cause != nil {
		_ = c.Error(e.cause)
	}
	c.AbortWithStatusJSON(e.Status, errorBody{e})
}

func (b *Broker) recovered(c *gin.Context, v any) {
	b.log.ErrorContext(c, "panic in handler", "panic", fmt.Sprint(v), "request_id", c.GetString(ctxRequestID))
	abort(c, errInternal(fmt.Errorf("panic: %v", v)))
}
