package companion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker/policy"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/events"
	"github.com/upbroker/upbroker/ratelimit"
)

// Input bounds: Companion's requests are small; anything larger is not
// Uppy.
const (
	maxBodyBytes    = 256 << 10
	maxFilenameLen  = 1024
	maxBatchParts   = 1000
	maxETagLen      = 256
	storeOpsTimeout = 30 * time.Second
)

// principal authenticates the request and checks that it may use the
// profile.
func (h *Handler) principal(r *http.Request) (auth.Principal, *apiError) {
	p, e := h.authenticate(r)
	if e != nil {
		return p, e
	}
	return p, h.allows(p)
}

func (h *Handler) authenticate(r *http.Request) (auth.Principal, *apiError) {
	p, err := h.auth.Authenticate(r)
	if err != nil {
		return p, authError(err)
	}
	return p, nil
}

func (h *Handler) allows(p auth.Principal) *apiError {
	if !p.Allows(h.prof.Name) {
		return errForbidden("you may not upload under profile " + h.prof.Name)
	}
	return nil
}

// grantRoute runs a route that grants an upload (/params, POST
// /multipart) and counts it. An unauthenticated request is not counted,
// as the v1 API's auth middleware refuses it before its grant handler.
func (h *Handler) grantRoute(w http.ResponseWriter, r *http.Request, grant func(http.ResponseWriter, *http.Request, auth.Principal) *apiError) *apiError {
	p, e := h.authenticate(r)
	if e != nil {
		return e
	}
	e = h.allows(p)
	if e == nil {
		e = grant(w, r, p)
	}
	h.countGrant(e)
	return e
}

// take charges one upload of up to max_size bytes to the caller: the
// Companion protocol never declares a file's size, so the most the grant
// allows is what it costs.
func (h *Handler) take(r *http.Request, p auth.Principal) *apiError {
	key := p.ID
	if p.Anonymous {
		key = "ip:" + h.clientIP(r)
	}
	d, err := h.limiter.Take(r.Context(), key, h.prof.MaxSize)
	if err != nil {
		if h.allowOnStoreError {
			h.log.WarnContext(r.Context(), "rate limit store failed; allowing (rate_limit.on_store_error: allow)", "err", err)
			return nil
		}
		return &apiError{status: http.StatusServiceUnavailable, msg: "the rate limiter is unavailable; try again later", cause: err}
	}
	if d.Allowed {
		return nil
	}
	if d.Reason == ratelimit.ReasonUnavailable {
		return &apiError{status: http.StatusServiceUnavailable, msg: "the rate limiter is unavailable; try again later"}
	}
	if h.onRateLimited != nil {
		h.onRateLimited(d.Reason)
	}
	msg := "too many uploads; slow down"
	if d.Reason == ratelimit.ReasonBytes {
		msg = "daily upload quota exhausted"
	}
	retry := d.RetryAfter
	if retry <= 0 {
		retry = time.Second
	}
	return &apiError{status: http.StatusTooManyRequests, msg: msg, retryAfter: retry}
}

// checkType normalizes a declared type and holds it to the allow-list.
func (h *Handler) checkType(field, declared string) (string, *apiError) {
	if declared == "" {
		return "", badField(field, "required")
	}
	t, err := policy.NormalizeType(declared)
	if err != nil {
		return "", typeError(field, declared, err)
	}
	if !h.prof.AllowsType(t) {
		return "", &apiError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("%s: %s is not allowed under profile %s", field, policy.MediaType(t), h.prof.Name)}
	}
	return t, nil
}

func checkFilename(name string) *apiError {
	if name == "" {
		return badField("filename", "required")
	}
	if len(name) > maxFilenameLen {
		return badField("filename", "longer than %d bytes", maxFilenameLen)
	}
	return nil
}

// objectMeta is the client's metadata plus the reserved entries.
func (h *Handler) objectMeta(client map[string]string, p auth.Principal) map[string]string {
	m := make(map[string]string, len(client)+2)
	for k, v := range client {
		m[k] = v
	}
	m[MetaPrincipal] = policy.PrincipalTag(p.ID)
	m[MetaProfile] = h.prof.Name
	return m
}

func (h *Handler) secondsLeft(at time.Time) int64 {
	s := int64(at.Sub(h.now()).Seconds())
	if s < 1 {
		s = 1
	}
	return s
}

// params answers GET /params: a POST policy for one file.
func (h *Handler) params(w http.ResponseWriter, r *http.Request, _ []string) *apiError {
	return h.grantRoute(w, r, h.grantPost)
}

func (h *Handler) grantPost(w http.ResponseWriter, r *http.Request, p auth.Principal) *apiError {
	q := r.URL.Query()
	filename := q.Get("filename")
	if e := checkFilename(filename); e != nil {
		return e
	}
	ctype, e := h.checkType("type", q.Get("type"))
	if e != nil {
		return e
	}
	meta, e := metadataFromQuery(q)
	if e != nil {
		return e
	}
	if h.post == nil {
		// Uppy 6 only ever POSTs a form here, and a PUT would need the
		// exact size, which this request does not carry.
		return badField("backend", "backend %s cannot sign a browser form (POST policy); use multipart uploads (Uppy's shouldUseMultipart: true)", h.backend)
	}
	if e := h.take(r, p); e != nil {
		return e
	}
	key, err := h.prof.Key(p.ID, filename, h.now())
	if err != nil {
		return &apiError{status: http.StatusInternalServerError, msg: "internal error; see the server log", cause: err}
	}
	start := time.Now()
	g, err := h.post.PresignPost(r.Context(), key, drivers.Constraints{
		ContentType: ctype, MaxSize: h.prof.MaxSize, Metadata: h.objectMeta(meta, p),
		NoOverwrite: true, Expires: h.prof.Expires,
	})
	h.metrics.Presign(h.backend, "post", time.Since(start))
	if err != nil {
		return storeError("presign post", err, "no such bucket")
	}
	fields := make(map[string]string, len(g.Fields)+1)
	for k, v := range g.Fields {
		fields[k] = v
	}
	u := g.URL
	if _, ok := fields["key"]; ok {
		// S3-style: the bucket URL, to which Uppy 6 appends fields.key to
		// report the object's location.
		if !strings.HasSuffix(u, "/") && !strings.Contains(u, "?") {
			u += "/"
		}
	} else {
		// The file driver's form goes to the object's own URL on the
		// broker and takes no key field; Uppy still reads fields.key for
		// the upload's result, and the driver ignores unsigned extras.
		fields["key"] = key
	}
	resp := map[string]any{"method": http.MethodPost, "url": u, "fields": fields, "expires": h.secondsLeft(g.ExpiresAt)}
	if len(g.Headers) > 0 {
		resp["headers"] = g.Headers
	}
	h.log.InfoContext(r.Context(), "companion post policy", "key", key, "principal", policy.PrincipalTag(p.ID), "content_type", ctype)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

type createRequest struct {
	Filename string                     `json:"filename"`
	Type     string                     `json:"type"`
	Metadata map[string]json.RawMessage `json:"metadata"`
}

// readJSON decodes a small JSON body; unknown fields are ignored, since
// Uppy may add some.
func readJSON(w http.ResponseWriter, r *http.Request, v any) *apiError {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && mt != "text/plain") {
			return &apiError{status: http.StatusUnsupportedMediaType, msg: "the body must be JSON (Content-Type: application/json)"}
		}
	}
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			// Limit is the tightest cap on the way: the broker mounts
			// this handler behind its own.
			return &apiError{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("the body is larger than %d bytes", tooBig.Limit)}
		}
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return badField(typeErr.Field, "has the wrong JSON type (%s)", typeErr.Value)
		}
		return badField("body", "not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badField("body", "holds more than one JSON value")
	}
	return nil
}

// createMultipart answers POST /multipart.
func (h *Handler) createMultipart(w http.ResponseWriter, r *http.Request, _ []string) *apiError {
	return h.grantRoute(w, r, h.grantMultipart)
}

func (h *Handler) grantMultipart(w http.ResponseWriter, r *http.Request, p auth.Principal) *apiError {
	var req createRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	if e := checkFilename(req.Filename); e != nil {
		return e
	}
	ctype, e := h.checkType("type", req.Type)
	if e != nil {
		return e
	}
	meta, e := metadataFromJSON(req.Metadata)
	if e != nil {
		return e
	}
	if h.mp == nil {
		return badField("backend", "backend %s does not support multipart uploads; upload files whole (Uppy's shouldUseMultipart: false)", h.backend)
	}
	if e := h.take(r, p); e != nil {
		return e
	}
	key, err := h.prof.Key(p.ID, req.Filename, h.now())
	if err != nil {
		return &apiError{status: http.StatusInternalServerError, msg: "internal error; see the server log", cause: err}
	}
	var id string
	err = h.call("create_multipart", func() (err error) {
		id, err = h.mp.CreateMultipart(r.Context(), key, drivers.Constraints{
			ContentType: ctype, MaxSize: h.prof.MaxSize, Metadata: h.objectMeta(meta, p),
			NoOverwrite: true, Expires: h.prof.Expires,
		})
		return err
	})
	if err != nil {
		return storeError("create multipart", err, "no such bucket")
	}
	h.log.InfoContext(r.Context(), "companion multipart created", "key", key, "principal", policy.PrincipalTag(p.ID), "content_type", ctype)
	writeJSON(w, http.StatusOK, map[string]string{"key": key, "uploadId": id, "bucket": h.bucket})
	return nil
}

// upload is what every /multipart/{uploadId} route checks first: the
// caller, its key, the upload id, and that the backend does multipart.
func (h *Handler) upload(r *http.Request, segs []string) (auth.Principal, string, string, *apiError) {
	p, e := h.principal(r)
	if e != nil {
		return p, "", "", e
	}
	id := segs[1]
	if e := checkUploadID(id); e != nil {
		return p, "", "", e
	}
	q := r.URL.Query()
	if len(q["key"]) > 1 {
		return p, "", "", badField("key", "given more than once")
	}
	key := q.Get("key")
	if e := h.checkOwnedKey(p.ID, key); e != nil {
		return p, "", "", e
	}
	if h.mp == nil {
		return p, "", "", badField("backend", "backend %s does not support multipart uploads", h.backend)
	}
	return p, key, id, nil
}

// partNumber parses one part number and holds it to the profile's size.
func (h *Handler) partNumber(field, s string) (int, *apiError) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxS3Parts || strconv.Itoa(n) != s {
		return 0, badField(field, "%q is not a part number from 1 to %d", s, maxS3Parts)
	}
	if n > h.maxParts {
		return 0, &apiError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("%s: part %d is beyond the %d parts that profile %s's max size of %d bytes allows", field, n, h.maxParts, h.prof.Name, h.prof.MaxSize)}
	}
	return n, nil
}

func (h *Handler) presignPart(ctx context.Context, key, id string, n int) (drivers.Grant, *apiError) {
	// Size 0: Uppy picks its own part sizes; the total is checked before
	// the parts are assembled.
	start := time.Now()
	g, err := h.mp.PresignPart(ctx, key, id, n, 0, h.prof.Expires)
	h.metrics.Presign(h.backend, "part", time.Since(start))
	if err != nil {
		return g, storeError("presign part", err, "no such upload")
	}
	return g, nil
}

// signPart answers GET /multipart/{uploadId}/{partNumber}.
func (h *Handler) signPart(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, key, id, e := h.upload(r, segs)
	if e != nil {
		return e
	}
	n, e := h.partNumber("partNumber", segs[2])
	if e != nil {
		return e
	}
	g, e := h.presignPart(r.Context(), key, id, n)
	if e != nil {
		return e
	}
	resp := map[string]any{"url": g.URL, "expires": h.secondsLeft(g.ExpiresAt)}
	if len(g.Headers) > 0 {
		resp["headers"] = g.Headers
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// signBatch answers GET /multipart/{uploadId}/batch?partNumbers=1,2.
func (h *Handler) signBatch(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, key, id, e := h.upload(r, segs)
	if e != nil {
		return e
	}
	raw := r.URL.Query().Get("partNumbers")
	if raw == "" {
		return badField("partNumbers", "required (a comma-separated list such as 1,2,3)")
	}
	list := strings.Split(raw, ",")
	if len(list) > maxBatchParts {
		return badField("partNumbers", "at most %d parts per request", maxBatchParts)
	}
	urls := make(map[string]string, len(list))
	for _, s := range list {
		n, e := h.partNumber("partNumbers", strings.TrimSpace(s))
		if e != nil {
			return e
		}
		if _, dup := urls[strconv.Itoa(n)]; dup {
			continue
		}
		g, e := h.presignPart(r.Context(), key, id, n)
		if e != nil {
			return e
		}
		urls[strconv.Itoa(n)] = g.URL
	}
	writeJSON(w, http.StatusOK, map[string]any{"presignedUrls": urls})
	return nil
}

// listedPart is one entry of GET /multipart/{uploadId}, in S3's names, as
// Companion passes S3's ListParts answer through.
type listedPart struct {
	PartNumber int    `json:"PartNumber"`
	ETag       string `json:"ETag"`
	Size       int64  `json:"Size"`
}

// listParts answers GET /multipart/{uploadId}.
func (h *Handler) listParts(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	_, key, id, e := h.upload(r, segs)
	if e != nil {
		return e
	}
	var parts []drivers.Part
	err := h.call("list_parts", func() (err error) { parts, err = h.mp.ListParts(r.Context(), key, id); return err })
	if err != nil {
		return storeError("list parts", err, "no such upload")
	}
	out := make([]listedPart, 0, len(parts))
	for _, p := range parts {
		// Quoted, as S3 lists them; complete accepts both forms.
		out = append(out, listedPart{PartNumber: p.Number, ETag: `"` + strings.Trim(p.ETag, `"`) + `"`, Size: p.Size})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type completeRequest struct {
	Parts []struct {
		PartNumber json.Number `json:"PartNumber"`
		ETag       string      `json:"ETag"`
	} `json:"parts"`
}

// complete answers POST /multipart/{uploadId}/complete.
func (h *Handler) complete(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	p, key, id, e := h.upload(r, segs)
	if e != nil {
		return e
	}
	var req completeRequest
	if e := readJSON(w, r, &req); e != nil {
		return e
	}
	if len(req.Parts) == 0 {
		return badField("parts", "required: the list of {PartNumber, ETag} uploaded")
	}
	if len(req.Parts) > h.maxParts {
		return &apiError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("parts: %d parts is more than the %d that profile %s's max size allows", len(req.Parts), h.maxParts, h.prof.Name)}
	}
	parts := make([]drivers.Part, 0, len(req.Parts))
	seen := make(map[int]bool, len(req.Parts))
	for i, rp := range req.Parts {
		field := fmt.Sprintf("parts[%d]", i)
		n, e := h.partNumber(field+".PartNumber", rp.PartNumber.String())
		if e != nil {
			return e
		}
		if seen[n] {
			return badField(field+".PartNumber", "part %d is listed twice", n)
		}
		seen[n] = true
		etag := strings.Trim(strings.TrimSpace(rp.ETag), `"`)
		if etag == "" || len(etag) > maxETagLen || strings.ContainsFunc(etag, func(c rune) bool { return c < 0x21 || c > 0x7e || c == '"' }) {
			return badField(field+".ETag", "must be the ETag the store answered for the part")
		}
		parts = append(parts, drivers.Part{Number: n, ETag: etag})
	}
	ctx := r.Context()
	// The part URLs do not pin sizes, so the total is checked here, before
	// anything is assembled, against what the store holds.
	var listed []drivers.Part
	err := h.call("list_parts", func() (err error) { listed, err = h.mp.ListParts(ctx, key, id); return err })
	if errors.Is(err, drivers.ErrNotFound) {
		// Nothing to complete (never created, aborted, or completed
		// already): the v1 API's "missing", a completion with nothing
		// uploaded. There is no object, so no event.
		h.metrics.Completion(h.prof.Name, h.backend, reasonMissing, 0)
	}
	if err != nil {
		return storeError("list parts", err, "no such upload")
	}
	held := make(map[int]drivers.Part, len(listed))
	for _, lp := range listed {
		held[lp.Number] = lp
	}
	var total int64
	for i, part := range parts {
		lp, ok := held[part.Number]
		if !ok {
			h.metrics.Completion(h.prof.Name, h.backend, reasonMissing, 0)
			return badField(fmt.Sprintf("parts[%d]", i), "part %d has not been uploaded", part.Number)
		}
		if strings.Trim(lp.ETag, `"`) != part.ETag {
			return badField(fmt.Sprintf("parts[%d].ETag", i), "does not match the ETag of the uploaded part %d", part.Number)
		}
		total += lp.Size
	}
	if total > h.prof.MaxSize {
		h.abortQuietly(ctx, key, id)
		h.reject(p, key, id, reasonSize, drivers.ObjectInfo{Size: total})
		return &apiError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("the upload holds %d bytes, more than profile %s's max size of %d bytes; it was aborted", total, h.prof.Name, h.prof.MaxSize)}
	}
	var info drivers.ObjectInfo
	err = h.call("complete_multipart", func() (err error) { info, err = h.mp.CompleteMultipart(ctx, key, id, parts); return err })
	if err != nil {
		return storeError("complete multipart", err, "no such upload")
	}
	if e := h.verify(ctx, p, key, id, info); e != nil {
		return e
	}
	h.metrics.Completion(h.prof.Name, h.backend, "ok", info.Size)
	h.publish(events.Completed, p, key, id, "", info)
	h.log.InfoContext(ctx, "companion multipart completed", "key", key, "size", info.Size)
	writeJSON(w, http.StatusOK, map[string]string{"location": h.location(ctx, key), "key": key, "bucket": h.bucket})
	return nil
}

// verify holds the assembled object to the profile, as the v1 API's
// completion does: its size (a part may have been uploaded again between
// the listing and the assembly), its type (the allow-list may have
// narrowed since the upload was created) and, when the profile asks, its
// first bytes. A refused object is deleted, counted and published.
func (h *Handler) verify(ctx context.Context, p auth.Principal, key, id string, info drivers.ObjectInfo) *apiError {
	refuse := func(reason string, status int, msg string) *apiError {
		h.deleteQuietly(ctx, key)
		h.reject(p, key, id, reason, info)
		return &apiError{status: status, msg: msg + "; it was deleted"}
	}
	if info.Size > h.prof.MaxSize {
		return refuse(reasonSize, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("the object has %d bytes, more than profile %s's max size of %d bytes", info.Size, h.prof.Name, h.prof.MaxSize))
	}
	if t, err := policy.NormalizeType(info.ContentType); err != nil || !h.prof.AllowsType(t) {
		return refuse(reasonType, http.StatusUnprocessableEntity,
			fmt.Sprintf("the object was stored as %q, which profile %s does not allow", info.ContentType, h.prof.Name))
	}
	if !h.prof.Sniff {
		return nil
	}
	var head []byte
	if err := h.call("read", func() (err error) { head, err = h.drv.ReadRange(ctx, key, 0, policy.SniffLen); return err }); err != nil {
		return storeError("read", err, "the object vanished")
	}
	if err := policy.Sniff(info.ContentType, head); err != nil {
		return refuse(reasonSniff, http.StatusUnprocessableEntity, err.Error())
	}
	return nil
}

// reject counts a refused completion and publishes upload.rejected.
func (h *Handler) reject(p auth.Principal, key, id, reason string, info drivers.ObjectInfo) {
	h.metrics.Completion(h.prof.Name, h.backend, reason, 0)
	h.publish(events.Rejected, p, key, id, reason, info)
}

// location is the object's URL as Companion reports it (S3's Location):
// the profile's public base URL when set, else the bucket URL of a POST
// policy with the key appended. Signing a policy makes no network call.
func (h *Handler) location(ctx context.Context, key string) string {
	if h.prof.PublicBaseURL != "" {
		return h.prof.PublicBaseURL + "/" + key
	}
	if h.post == nil {
		return ""
	}
	g, err := h.post.PresignPost(ctx, key, drivers.Constraints{ContentType: "application/octet-stream", MaxSize: 1, Expires: time.Minute})
	if err != nil {
		return ""
	}
	u, err := url.Parse(g.URL)
	if err != nil {
		return ""
	}
	u.RawQuery = ""
	if _, ok := g.Fields["key"]; ok {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/" + key
		u.RawPath = ""
	}
	return u.String()
}

func (h *Handler) abortQuietly(ctx context.Context, key, id string) {
	// The caller's request may be cancelled; the clean-up must still run.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeOpsTimeout)
	defer cancel()
	if err := h.call("abort_multipart", func() error { return h.mp.AbortMultipart(ctx, key, id) }); err != nil {
		h.log.WarnContext(ctx, "companion: abort of an oversized upload failed", "key", key, "err", err)
	}
}

func (h *Handler) deleteQuietly(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeOpsTimeout)
	defer cancel()
	if err := h.call("delete", func() error { return h.drv.Delete(ctx, key) }); err != nil {
		h.log.WarnContext(ctx, "companion: delete of a refused object failed", "key", key, "err", err)
	}
}

// abort answers DELETE /multipart/{uploadId}. An upload that is already
// gone counts as aborted, since Uppy may cancel twice, but only the abort
// that dropped it publishes upload.aborted: one that finds nothing may
// follow a completion, and the object is then still there. Stores differ
// on aborting an unknown upload (S3 refuses, MinIO answers success), so
// the upload's existence is asked first.
func (h *Handler) abort(w http.ResponseWriter, r *http.Request, segs []string) *apiError {
	p, key, id, e := h.upload(r, segs)
	if e != nil {
		return e
	}
	ctx := r.Context()
	err := h.call("list_parts", func() error { _, err := h.mp.ListParts(ctx, key, id); return err })
	if err == nil {
		err = h.call("abort_multipart", func() error { return h.mp.AbortMultipart(ctx, key, id) })
		if err == nil {
			h.publish(events.Aborted, p, key, id, "", drivers.ObjectInfo{})
		}
	}
	if err != nil && !errors.Is(err, drivers.ErrNotFound) {
		return storeError("abort multipart", err, "no such upload")
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}
