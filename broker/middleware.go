package broker

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/upbroker/upbroker/auth"
)

// Keys of values the middleware leaves in the gin context.
const (
	ctxRequestID = "upbroker.request_id"
	ctxState     = "upbroker.request"
)

// requestState is what the middleware keeps about one request, in one
// allocation: boxing each value into the gin context costs one apiece.
type requestState struct {
	idHeader     [1]string // the X-Request-ID response header's value slice
	principal    auth.Principal
	hasPrincipal bool
}

func stateOf(c *gin.Context) *requestState {
	v, _ := c.Get(ctxState)
	st, _ := v.(*requestState)
	return st
}

// PrincipalFrom is the seam where authentication hands over to handlers:
// the caller that the auth middleware accepted for this request.
func PrincipalFrom(c *gin.Context) (auth.Principal, bool) {
	if st := stateOf(c); st != nil && st.hasPrincipal {
		return st.principal, true
	}
	return auth.Principal{}, false
}

// SetPrincipal records the caller of a request (for auth middleware and
// tests).
func SetPrincipal(c *gin.Context, p auth.Principal) {
	st := stateOf(c)
	if st == nil {
		st = &requestState{}
		c.Set(ctxState, st)
	}
	st.principal, st.hasPrincipal = p, true
}

func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// requestID keeps a caller's X-Request-ID when it is safe to log and echo,
// and makes one otherwise.
func (b *Broker) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !validRequestID(id) {
		var raw [12]byte
		_, _ = rand.Read(raw[:])
		id = hex.EncodeToString(raw[:])
	}
	st := &requestState{idHeader: [1]string{id}}
	c.Set(ctxState, st)
	c.Set(ctxRequestID, id)
	// Set directly under the canonical name: Header().Set would
	// canonicalize "X-Request-ID" anew, and allocate, on every request.
	c.Writer.Header()["X-Request-Id"] = st.idHeader[:]
	c.Next()
}

// accessLog writes one line per request. The route is the template, never
// the raw path, which would log tickets and keys.
func (b *Broker) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	status := c.Writer.Status()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	// Nothing is built for a line the logger would drop (--log-level warn).
	if !b.log.Enabled(c, level) {
		return
	}
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	principal := ""
	if p, ok := PrincipalFrom(c); ok {
		principal = p.ID
	}
	attrs := [7]slog.Attr{
		slog.String("request_id", c.GetString(ctxRequestID)), slog.String("method", c.Request.Method), slog.String("route", route),
		slog.Int("status", status), slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000), slog.String("principal", principal),
	}
	n := 6
	if len(c.Errors) > 0 {
		attrs[n] = slog.String("err", c.Errors.Last().Err.Error())
		n++
	}
	b.log.LogAttrs(c, level, "request", attrs[:n]...)
}

// bodyCap bounds what any route may send the broker.
func bodyCap(c *gin.Context) {
	if c.Request.ContentLength > MaxJSONBody {
		abort(c, errTooLarge("", "request body exceeds 64 KiB"))
		return
	}
	if c.Request.Body != nil && c.Request.Body != http.NoBody {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxJSONBody)
	}
	c.Next()
}

func authError(err error) *apiError {
	if errors.Is(err, auth.ErrUnavailable) {
		return &apiError{Status: http.StatusServiceUnavailable, Code: "backend_unavailable",
			Message: "the identity provider is unavailable; try again later", cause: err}
	}
	msg := "missing or invalid credentials"
	if errors.Is(err, auth.ErrUnauthorized) && err.Error() != auth.ErrUnauthorized.Error() {
		// Authenticators promise their wrapped message is safe to show.
		msg = err.Error()
	}
	return &apiError{Status: http.StatusUnauthorized, Code: "unauthorized", Message: msg, cause: err}
}

// authenticate is the seam: it sets the principal or refuses the request.
func (b *Broker) authenticate(c *gin.Context) {
	p, err := b.auth.Authenticate(c.Request)
	if err != nil {
		if !errors.Is(err, auth.ErrUnavailable) {
			c.Header("WWW-Authenticate", `Bearer realm="upbroker"`)
		}
		abort(c, authError(err))
		return
	}
	SetPrincipal(c, p)
	c.Next()
}
