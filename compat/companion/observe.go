package companion

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker/policy"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/events"
)

// Metrics is the part of the broker's metrics that Companion's routes
// report to. It is declared here, not imported, because the broker
// imports this package; broker.Metrics (and so metrics.Metrics) has these
// methods with these meanings.
type Metrics interface {
	// Grant counts a grant by profile, backend and result ("ok" or an
	// error code), with the bytes granted when ok.
	Grant(profile, backend, result string, bytes int64)
	// Completion counts a completion: reason "ok" with the verified size,
	// or a rejection reason (size, type, sniff, missing) with 0.
	Completion(profile, backend, reason string, bytes int64)
	// Presign observes the time to sign one URL, by operation.
	Presign(backend, op string, d time.Duration)
	// BackendCall observes one store call and whether it failed.
	BackendCall(backend, op string, d time.Duration, err error)
}

type noMetrics struct{}

func (noMetrics) Grant(string, string, string, int64)              {}
func (noMetrics) Completion(string, string, string, int64)         {}
func (noMetrics) Presign(string, string, time.Duration)            {}
func (noMetrics) BackendCall(string, string, time.Duration, error) {}

// Rejection reasons, as the v1 API names them.
const (
	reasonSize    = "size"
	reasonType    = "type"
	reasonSniff   = "sniff"
	reasonMissing = "missing"
)

// resultCode is the v1 API's error code for a status, so that a refused
// Companion grant is counted under the same result label as a refused
// POST /v1/uploads.
func resultCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "exists"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnsupportedMediaType:
		return "unsupported_type"
	case http.StatusUnprocessableEntity:
		return "rejected"
	case http.StatusTooManyRequests:
		return "rate_limited"
	case http.StatusServiceUnavailable:
		return "backend_unavailable"
	}
	return "internal"
}

// countGrant counts one grant request that got past authentication, as
// the v1 API counts those that get past its auth middleware. A refusal
// grants no bytes.
func (h *Handler) countGrant(e *apiError) {
	if e != nil {
		h.metrics.Grant(h.prof.Name, h.backend, resultCode(e.status), 0)
		return
	}
	h.metrics.Grant(h.prof.Name, h.backend, "ok", h.prof.MaxSize)
}

// call times one store call for the metrics.
func (h *Handler) call(op string, f func() error) error {
	start := time.Now()
	err := f()
	h.metrics.BackendCall(h.backend, op, time.Since(start), err)
	return err
}

// eventID is stable per upload and event type, so that a receiver can
// drop a duplicate (Uppy may cancel twice) without dropping a different
// event about the same upload.
func eventID(typ events.Type, backend, key, uploadID string) string {
	sum := sha256.Sum256([]byte("companion\x00" + string(typ) + "\x00" + backend + "\x00" + key + "\x00" + uploadID))
	return hex.EncodeToString(sum[:12])
}

// publish sends the event of one upload with the v1 API's payload: the
// object's client metadata (the reserved entries left out) and its stored
// content type, which the upload was created with.
func (h *Handler) publish(typ events.Type, p auth.Principal, key, uploadID, reason string, info drivers.ObjectInfo) {
	var meta map[string]string
	for k, v := range info.Metadata {
		if strings.HasPrefix(k, policy.ReservedPrefix) {
			continue
		}
		if meta == nil {
			meta = map[string]string{}
		}
		meta[k] = v
	}
	ctype := info.ContentType
	if ctype != "" {
		if t, err := policy.NormalizeType(ctype); err == nil {
			ctype = t
		}
	}
	h.events.Publish(events.Event{
		ID: eventID(typ, h.backend, key, uploadID), Type: typ, Time: h.now().UTC(), Key: key, Backend: h.backend,
		Profile: h.prof.Name, Principal: p.ID, Size: info.Size, ContentType: ctype, Metadata: meta, Reason: reason,
	})
}
