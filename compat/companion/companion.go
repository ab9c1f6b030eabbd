// Package companion serves the S3 signing endpoints of Uppy Companion, so
// that pages using @uppy/aws-s3 (6.x `companionEndpoint`, 5.x `endpoint`)
// upload through upbroker with no change but the URL.
//
// Companion signs whatever it is asked to. This handler does not: every
// request is authenticated, the profile's type allow-list and size limit
// hold, keys are made by the server from the profile's template, and a
// caller may only touch keys made for itself.
//
// The handler expects to be mounted with its prefix (compat.companion.path,
// /s3 by default) stripped, so it sees /params, /multipart and so on.
package companion

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker/policy"
	"github.com/upbroker/upbroker/config"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/ratelimit"
)

// Reserved metadata written on every object, as the broker does, so that
// downloads and audits can tell whose object it is.
const (
	MetaPrincipal = "upbrokerprincipal"
	MetaProfile   = "upbrokerprofile"
)

// Options are what a Companion handler is built from. Config, Profile,
// ProfileName, Backend, Driver and Auth are required.
type Options struct {
	// Config is compat.companion; its Path must end in /s3 (Uppy appends
	// /s3 to the endpoint it is given).
	Config config.Companion
	// ProfileName and Profile are the profile every upload goes under.
	ProfileName string
	Profile     config.Profile
	// Backend is the profile's backend name and Driver its opened driver.
	Backend string
	Driver  drivers.Driver
	// Bucket is reported to Uppy in {bucket} fields (the backend's bucket
	// or container setting); it may be empty.
	Bucket string
	// Auth authenticates every request. There is no default: anonymous
	// access must be configured (auth.None), never assumed.
	Auth auth.Authenticator
	// Limiter charges /params and POST /multipart; nil means unlimited.
	Limiter ratelimit.Limiter
	// OnStoreError is rate_limit.on_store_error (deny or allow), applied
	// when Limiter.Take returns an error.
	OnStoreError string
	// OnRateLimited is called with the limit hit ("grants" or "bytes")
	// each time the limiter refuses a request, so that the broker's
	// upbroker_rate_limited_total counts Companion's refusals too; nil
	// means nothing is counted.
	OnRateLimited func(reason string)
	// Metrics counts grants, completions, signing and store calls under
	// the same names and labels as the v1 API; the broker passes its own
	// (broker.Metrics satisfies this interface). Nil counts nothing.
	Metrics Metrics
	// Events receives upload.completed, upload.rejected and
	// upload.aborted, with the v1 API's payload; the broker passes its
	// webhook dispatcher. Nil drops them.
	Events events.Sink
	// ClientIP gives the address that anonymous callers are limited by;
	// the broker passes its trusted-proxy-aware resolver. Default: the
	// host of r.RemoteAddr.
	ClientIP func(*http.Request) string
	Logger   *slog.Logger
	// Now is the clock (tests replace it); default time.Now.
	Now func() time.Time
}

// Handler serves the Companion routes.
type Handler struct {
	prof              *policy.Profile
	tmpl              []tmplSeg
	backend           string
	bucket            string
	drv               drivers.Driver
	post              drivers.PostPresigner // nil: no POST policy
	mp                drivers.Multipart     // nil: no multipart
	maxParts          int
	auth              auth.Authenticator
	limiter           ratelimit.Limiter
	onRateLimited     func(reason string)
	metrics           Metrics
	events            events.Sink
	allowOnStoreError bool
	clientIP          func(*http.Request) string
	log               *slog.Logger
	now               func() time.Time
}

// New checks the options and builds the handler.
func New(o Options) (http.Handler, error) {
	return newHandler(o)
}

func newHandler(o Options) (*Handler, error) {
	if o.Config.Path != "" && !strings.HasSuffix(o.Config.Path, "/s3") {
		return nil, fmt.Errorf("compat.companion.path: %q must end in /s3: Uppy appends /s3 to the endpoint it is given, so use the path without /s3 as Uppy's endpoint", o.Config.Path)
	}
	if o.ProfileName == "" {
		return nil, errors.New("compat.companion.profile: required")
	}
	field := "profiles." + o.ProfileName + ".key"
	if o.Driver == nil {
		return nil, fmt.Errorf("compat.companion: profile %q: backend %q is not open", o.ProfileName, o.Backend)
	}
	if o.Auth == nil {
		return nil, errors.New("compat.companion: an authenticator is required (auth.None for anonymous access)")
	}
	prof, err := policy.Compile(o.ProfileName, o.Profile)
	if err != nil {
		return nil, fmt.Errorf("compat.companion: %w", err)
	}
	tmpl := o.Profile.Key
	if tmpl == "" {
		tmpl = defaultKeyTemplate
	}
	segs, err := parseTemplate(tmpl)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	if !hasPrincipal(segs) {
		// Ownership is read from the key alone (the Companion protocol
		// carries no ticket), so a key must say whose it is.
		return nil, fmt.Errorf("compat.companion: %s: template %q has no {principal}; the Companion endpoints need it to keep each caller to its own keys", field, tmpl)
	}
	h := &Handler{
		prof: prof, tmpl: segs, backend: o.Backend, bucket: o.Bucket, drv: o.Driver,
		auth: o.Auth, limiter: o.Limiter, onRateLimited: o.OnRateLimited,
		metrics: o.Metrics, events: o.Events, clientIP: o.ClientIP, log: o.Logger, now: o.Now,
	}
	switch strings.ToLower(o.OnStoreError) {
	case "", "deny":
	case "allow":
		h.allowOnStoreError = true
	default:
		return nil, fmt.Errorf("rate_limit.on_store_error: %q is not deny or allow", o.OnStoreError)
	}
	if h.limiter == nil {
		h.limiter = ratelimit.Unlimited{}
	}
	if h.metrics == nil {
		h.metrics = noMetrics{}
	}
	if h.events == nil {
		h.events = events.Discard{}
	}
	if h.clientIP == nil {
		h.clientIP = remoteHost
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.log = h.log.With("component", "companion", "profile", o.ProfileName, "backend", o.Backend)
	if h.now == nil {
		h.now = time.Now
	}
	caps := o.Driver.Capabilities()
	if pp, ok := o.Driver.(drivers.PostPresigner); ok && caps.PostPolicy {
		h.post = pp
	}
	if m, ok := o.Driver.(drivers.Multipart); ok && caps.Multipart {
		h.mp = m
	}
	h.maxParts = partLimit(prof.MaxSize, caps)
	return h, nil
}

// partLimit is the highest part number an upload under max bytes can
// need: every part but the last holds at least MinPartSize bytes, so more
// than ceil(max / MinPartSize) parts cannot fit in max.
func partLimit(max int64, caps drivers.Capabilities) int {
	limit := int64(caps.MaxParts)
	if limit <= 0 || limit > maxS3Parts {
		limit = maxS3Parts
	}
	if caps.MinPartSize > 0 {
		if n := (max + caps.MinPartSize - 1) / caps.MinPartSize; n < limit {
			limit = n
		}
	}
	return int(max64(limit, 1))
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// maxS3Parts is S3's limit, which Uppy also assumes.
const maxS3Parts = 10000

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ServeHTTP routes by path segment. The routes are few and fixed; routing
// by hand keeps every refusal (404, 405 too) in Companion's JSON shape.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	segs, ok := splitPath(r.URL.EscapedPath())
	if !ok {
		writeErr(w, errNotFound("no such route"))
		return
	}
	type route struct {
		method string
		fn     func(http.ResponseWriter, *http.Request, []string) *apiError
	}
	var routes []route
	switch {
	case len(segs) == 1 && segs[0] == "params":
		routes = []route{{http.MethodGet, h.params}}
	case len(segs) == 1 && segs[0] == "multipart":
		routes = []route{{http.MethodPost, h.createMultipart}}
	case len(segs) == 2 && segs[0] == "multipart":
		routes = []route{{http.MethodGet, h.listParts}, {http.MethodDelete, h.abort}}
	case len(segs) == 3 && segs[0] == "multipart" && segs[2] == "batch":
		routes = []route{{http.MethodGet, h.signBatch}}
	case len(segs) == 3 && segs[0] == "multipart" && segs[2] == "complete":
		routes = []route{{http.MethodPost, h.complete}}
	case len(segs) == 3 && segs[0] == "multipart":
		routes = []route{{http.MethodGet, h.signPart}}
	default:
		writeErr(w, errNotFound("no such route"))
		return
	}
	allowed := make([]string, 0, len(routes))
	for _, rt := range routes {
		if rt.method == r.Method {
			if e := rt.fn(w, r, segs); e != nil {
				h.fail(w, r, e)
			}
			return
		}
		allowed = append(allowed, rt.method)
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeErr(w, &apiError{status: http.StatusMethodNotAllowed, msg: fmt.Sprintf("method %s is not allowed here (allowed: %s)", r.Method, strings.Join(allowed, ", "))})
}

// splitPath cuts an escaped path into unescaped segments, so that an
// upload id holding an escaped "/" stays one segment.
func splitPath(escaped string) ([]string, bool) {
	escaped = strings.TrimPrefix(escaped, "/")
	if escaped == "" {
		return nil, false
	}
	raw := strings.Split(escaped, "/")
	out := make([]string, len(raw))
	for i, s := range raw {
		u, err := pathUnescape(s)
		if err != nil || u == "" {
			return nil, false
		}
		out[i] = u
	}
	return out, true
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, e *apiError) {
	if e.status >= 500 {
		h.log.ErrorContext(r.Context(), "companion request failed", "method", r.Method, "path", r.URL.Path,
			"status", e.status, "err", e.cause)
	} else if e.cause != nil {
		h.log.DebugContext(r.Context(), "companion request refused", "method", r.Method, "path", r.URL.Path,
			"status", e.status, "err", e.cause)
	}
	if e.retryAfter > 0 {
		secs := int64((e.retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", fmt.Sprint(secs))
	}
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="upbroker"`)
	}
	writeErr(w, e)
}
