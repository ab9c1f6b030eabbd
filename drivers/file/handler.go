package file

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Limits of a POST form besides the file itself, so that fields cannot be
// used to send unbounded data.
const (
	maxFieldSize  = 8 << 10
	maxFormFields = 64
	formOverhead  = 1 << 20
)

// Handler serves the driver's signed URLs. The broker mounts it at
// /v1/blob/<backend>/ with that prefix stripped, so the path is "/<key>".
func (d *Driver) Handler() http.Handler { return http.HandlerFunc(d.serve) }

// apiError is one refusal, written as the API's JSON error body.
type apiError struct {
	status  int
	code    string
	message string
	field   string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func refuse(status int, code, field, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, field: field, message: fmt.Sprintf(format, args...)}
}

func writeError(w http.ResponseWriter, e *apiError) {
	body := map[string]any{"code": e.code, "message": e.message}
	if e.field != "" {
		body["field"] = e.field
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
}

func (d *Driver) serve(w http.ResponseWriter, r *http.Request) {
	var err *apiError
	key := strings.TrimPrefix(r.URL.Path, "/")
	if checkKey(key) != nil {
		err = refuse(http.StatusNotFound, "not_found", "", "no such object")
	} else {
		switch r.Method {
		case http.MethodPut:
			err = d.servePut(w, r, key)
		case http.MethodPost:
			err = d.servePost(w, r, key)
		case http.MethodGet, http.MethodHead:
			err = d.serveGet(w, r, key)
		default:
			// Verify first, so the answer does not tell an unsigned caller
			// anything; then the method is simply not the signed one.
			if _, e := d.verifyQuery(r, key); e != nil {
				err = e
			} else {
				err = refuse(http.StatusForbidden, "forbidden", "", "method %s is not the signed method", r.Method)
			}
		}
	}
	if err != nil {
		if err.status >= 500 {
			d.log.ErrorContext(r.Context(), "blob request failed", "method", r.Method, "key", key, "err", err.message)
			err.message = "the store failed; see the server log"
		}
		writeError(w, err)
	}
}

// verifyQuery checks the URL's signature, taking signed metadata from the
// request's headers.
func (d *Driver) verifyQuery(r *http.Request, key string) (ticket, *apiError) {
	return d.verify(r.Context(), r.URL.Query(), key, func(name string) (string, bool) {
		v := r.Header.Values(metaHeader(name))
		if len(v) != 1 {
			return "", false
		}
		return v[0], true
	})
}

func (d *Driver) verify(ctx context.Context, q url.Values, key string, meta func(string) (string, bool)) (ticket, *apiError) {
	// An expired URL is 403 like S3's AccessDenied (not the API's 410,
	// which is about tickets); the message says it expired.
	t, err := d.sign.verify(ctx, q, key, meta)
	if err != nil {
		return t, refuse(http.StatusForbidden, "forbidden", "", "%v", err)
	}
	return t, nil
}

func checkMethod(t ticket, method string) *apiError {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	if t.Method != method {
		return refuse(http.StatusForbidden, "forbidden", "", "method %s is not the signed method (%s)", method, t.Method)
	}
	return nil
}

// unsignedMeta finds metadata that the request carries but the URL did not
// sign: it would otherwise be dropped silently.
func unsignedMeta(names []string, t ticket) *apiError {
	for _, n := range names {
		if _, ok := t.Meta[n]; !ok {
			return refuse(http.StatusForbidden, "forbidden", n, "metadata %s%s is not signed", MetaHeaderPrefix, n)
		}
	}
	return nil
}

func (d *Driver) servePut(w http.ResponseWriter, r *http.Request, key string) *apiError {
	t, e := d.verifyQuery(r, key)
	if e != nil {
		return e
	}
	if e := checkMethod(t, r.Method); e != nil {
		return e
	}
	var names []string
	for h := range r.Header {
		if n, ok := strings.CutPrefix(h, MetaHeaderPrefix); ok {
			names = append(names, strings.ToLower(n))
		}
	}
	if e := unsignedMeta(names, t); e != nil {
		return e
	}
	if ct := r.Header.Get("Content-Type"); ct != t.ContentType {
		return refuse(http.StatusForbidden, "forbidden", "content_type", "Content-Type %q is not the signed type %q", ct, t.ContentType)
	}
	switch {
	case t.Size < 0:
		return refuse(http.StatusForbidden, "forbidden", "", "the URL does not sign a size")
	case r.ContentLength > t.Size:
		return refuse(http.StatusRequestEntityTooLarge, "too_large", "size", "Content-Length %d is over the signed size %d", r.ContentLength, t.Size)
	case r.ContentLength >= 0 && r.ContentLength != t.Size:
		return refuse(http.StatusForbidden, "forbidden", "size", "Content-Length %d is not the signed size %d", r.ContentLength, t.Size)
	}
	// A chunked body has no Content-Length: MaxBytesReader stops it one byte
	// past the signed size.
	body := http.MaxBytesReader(w, r.Body, t.Size)
	etag, e := d.store(r.Context(), t, body, t.Size)
	if e != nil {
		return e
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	w.WriteHeader(http.StatusOK)
	return nil
}

// store streams body into key and commits it only when every check passed.
// exact >= 0 requires exactly that many bytes; otherwise t.Max bounds it.
// Whatever goes wrong, the write is cancelled, so fileblob removes its
// temporary file and no object, partial or whole, appears.
func (d *Driver) store(ctx context.Context, t ticket, body io.Reader, exact int64) (string, *apiError) {
	if t.NoClobber {
		// Fail fast, before reading the body; the commit below decides.
		if ok, err := d.bucket.Exists(ctx, t.Key); err != nil {
			return "", refuse(http.StatusInternalServerError, "internal", "", "exists %q: %v", t.Key, err)
		} else if ok {
			return "", errExists(t.Key)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	meta := make(map[string]string, len(t.Meta)+1)
	for k, v := range t.Meta {
		meta[k] = v
	}
	if t.SHA256 != "" {
		meta[checksumMetaKey] = t.SHA256
	}
	bw, err := d.bucket.NewWriter(ctx, t.Key, &blob.WriterOptions{ContentType: t.ContentType, Metadata: meta,
		IfNotExist: t.NoClobber})
	if err != nil {
		return "", refuse(http.StatusInternalServerError, "internal", "", "open writer %q: %v", t.Key, err)
	}
	abort := func(e *apiError) (string, *apiError) {
		cancel()
		_ = bw.Close()
		return "", e
	}
	var sum hash.Hash
	src := body
	if t.SHA256 != "" {
		sum = sha256.New()
		src = io.TeeReader(body, sum)
	}
	if exact < 0 {
		// One byte more than allowed tells "too large" from "exactly max".
		src = io.LimitReader(src, t.Max+1)
	}
	// Read here, written and MD5-hashed by fileblob on a second goroutine.
	n, err := pipeCopy(bw, src)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || (exact < 0 && n > t.Max):
		limit := t.Max
		if exact >= 0 {
			limit = exact
		}
		return abort(refuse(http.StatusRequestEntityTooLarge, "too_large", "size", "the body is larger than the signed size %d", limit))
	case err != nil && ctx.Err() != nil:
		return abort(refuse(http.StatusBadRequest, "invalid_request", "", "the upload was interrupted: %v", err))
	case err != nil:
		// Mostly a client that hung up or sent a broken chunked body.
		return abort(refuse(http.StatusBadRequest, "invalid_request", "", "reading the body: %v", err))
	case exact >= 0 && n != exact:
		return abort(refuse(http.StatusForbidden, "forbidden", "size", "the body has %d bytes, not the signed %d", n, exact))
	}
	if sum != nil {
		if got := base64.StdEncoding.EncodeToString(sum.Sum(nil)); got != t.SHA256 {
			// 400 like S3's BadDigest: the client's bytes contradict its own
			// declaration. 422 is kept for the broker's policy checks.
			return abort(refuse(http.StatusBadRequest, "invalid_request", "checksum_sha256", "the body's SHA-256 %s is not the signed %s", got, t.SHA256))
		}
	}
	if t.NoClobber {
		// The per-key lock makes "exists?" and fileblob's rename one step
		// for all writers in this process. fileblob's IfNotExist checks
		// again under its own lock. Another process sharing the folder
		// could still rename between the two: see docs/file-driver.md.
		unlock := d.locks.lock(t.Key)
		defer unlock()
		if ok, err := d.bucket.Exists(ctx, t.Key); err != nil {
			return abort(refuse(http.StatusInternalServerError, "internal", "", "exists %q: %v", t.Key, err))
		} else if ok {
			return abort(errExists(t.Key))
		}
	}
	if err := bw.Close(); err != nil {
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			return "", errExists(t.Key)
		}
		if ctx.Err() != nil {
			return "", refuse(http.StatusBadRequest, "invalid_request", "", "the upload was interrupted: %v", err)
		}
		return "", refuse(http.StatusInternalServerError, "internal", "", "commit %q: %v", t.Key, err)
	}
	a, err := d.bucket.Attributes(ctx, t.Key)
	if err != nil {
		return "", refuse(http.StatusInternalServerError, "internal", "", "stat %q: %v", t.Key, err)
	}
	return etag(a.MD5, a.ETag), nil
}

func errExists(key string) *apiError {
	return refuse(http.StatusPreconditionFailed, "exists", "", "an object already exists at %q and the URL forbids overwriting it", key)
}

// servePost takes a multipart/form-data upload: the signed fields first,
// the file last (as with an S3 POST policy).
func (d *Driver) servePost(w http.ResponseWriter, r *http.Request, key string) *apiError {
	mr, err := r.MultipartReader()
	if err != nil {
		return refuse(http.StatusBadRequest, "invalid_request", "", "the body must be multipart/form-data: %v", err)
	}
	fields := url.Values{}
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return refuse(http.StatusBadRequest, "invalid_request", "file", "the form has no file part")
		}
		if err != nil {
			return refuse(http.StatusBadRequest, "invalid_request", "", "reading the form: %v", err)
		}
		if i >= maxFormFields {
			return refuse(http.StatusBadRequest, "invalid_request", "", "the form has more than %d fields", maxFormFields)
		}
		name := part.FormName()
		if name == "file" || part.FileName() != "" {
			e := d.postFile(w, r, key, fields, part)
			_ = part.Close()
			return e
		}
		v, err := io.ReadAll(io.LimitReader(part, maxFieldSize+1))
		_ = part.Close()
		if err != nil {
			return refuse(http.StatusBadRequest, "invalid_request", name, "reading the form: %v", err)
		}
		if len(v) > maxFieldSize {
			return refuse(http.StatusBadRequest, "invalid_request", name, "form field %q is longer than %d bytes", name, maxFieldSize)
		}
		if fields.Has(name) {
			return refuse(http.StatusBadRequest, "invalid_request", name, "form field %q appears twice", name)
		}
		fields.Set(name, string(v))
	}
}

func (d *Driver) postFile(w http.ResponseWriter, r *http.Request, key string, fields url.Values, file io.Reader) *apiError {
	var names []string
	meta := map[string]string{}
	for f := range fields {
		if n, ok := strings.CutPrefix(http.CanonicalHeaderKey(f), MetaHeaderPrefix); ok {
			n = strings.ToLower(n)
			names = append(names, n)
			meta[n] = fields.Get(f)
		}
	}
	t, e := d.verify(r.Context(), fields, key, func(n string) (string, bool) { v, ok := meta[n]; return v, ok })
	if e != nil {
		return e
	}
	if e := checkMethod(t, r.Method); e != nil {
		return e
	}
	if e := unsignedMeta(names, t); e != nil {
		return e
	}
	if ct := fields.Get("Content-Type"); ct != t.ContentType {
		return refuse(http.StatusForbidden, "forbidden", "content_type", "form field Content-Type %q is not the signed type %q", ct, t.ContentType)
	}
	if t.Max < 0 {
		return refuse(http.StatusForbidden, "forbidden", "", "the form does not sign a maximum size")
	}
	if r.ContentLength > t.Max+formOverhead {
		return refuse(http.StatusRequestEntityTooLarge, "too_large", "size", "the form is larger than the signed maximum %d", t.Max)
	}
	etag, e := d.store(r.Context(), t, file, -1)
	if e != nil {
		return e
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	w.Header().Set("Location", r.URL.Path)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// inlineTypes may be shown in the browser; anything else (HTML, SVG, scripts)
// is served as an attachment, because these files come from the broker's
// own origin and must not run there.
func inlineType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch {
	case mt == "image/svg+xml":
		return false
	case strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "video/"), strings.HasPrefix(mt, "audio/"):
		return true
	}
	return mt == "text/plain" || mt == "application/pdf" || mt == "application/json"
}

// safeFilename keeps the base name's printable characters, without quotes
// or separators, so it cannot break out of the header.
func safeFilename(name string) string {
	name = path.Base(strings.ReplaceAll(name, `\`, "/"))
	name = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '/' || r == '\\' || r == ';' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if name == "" || name == "." || name == ".." {
		return "download"
	}
	if len(name) > 200 {
		name = name[:200]
	}
	return name
}

func (d *Driver) serveGet(w http.ResponseWriter, r *http.Request, key string) *apiError {
	t, e := d.verifyQuery(r, key)
	if e != nil {
		return e
	}
	if e := checkMethod(t, r.Method); e != nil {
		return e
	}
	a, err := d.bucket.Attributes(r.Context(), key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return refuse(http.StatusNotFound, "not_found", "", "no object at %q", key)
	} else if err != nil {
		return refuse(http.StatusInternalServerError, "internal", "", "stat %q: %v", key, err)
	}
	rd, err := d.bucket.NewReader(r.Context(), key, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return refuse(http.StatusNotFound, "not_found", "", "no object at %q", key)
	} else if err != nil {
		return refuse(http.StatusInternalServerError, "internal", "", "open %q: %v", key, err)
	}
	defer rd.Close()
	h := w.Header()
	ct := a.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("ETag", `"`+etag(a.MD5, a.ETag)+`"`)
	h.Set("Cache-Control", "private, max-age="+strconv.FormatInt(max(0, timeUntil(t)), 10))
	disp := "attachment"
	if t.Filename == "" && inlineType(ct) {
		disp = "inline"
	}
	name := t.Filename
	if name == "" {
		name = path.Base(key)
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": safeFilename(name)}))
	http.ServeContent(w, r, "", a.ModTime, rd)
	return nil
}
