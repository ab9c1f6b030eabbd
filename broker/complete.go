package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/upbroker/upbroker/broker/policy"
	"github.com/upbroker/upbroker/broker/ticket"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/events"
)

// ticketFor verifies the :id of a route and that it belongs to the caller.
func (b *Broker) ticketFor(c *gin.Context) (*ticket.Ticket, string, *apiError) {
	id := c.Param("id")
	tk, err := b.tickets.Check(id, b.now(), b.grace)
	switch {
	case errors.Is(err, ticket.ErrExpired):
		return nil, "", &apiError{Status: http.StatusGone, Code: "expired",
			Message: "this upload expired at " + tk.Expires.UTC().Format(time.RFC3339) + " (plus a grace period); ask for a new grant"}
	case err != nil:
		return nil, "", errNotFound("no such upload")
	}
	if _, ok := b.backends[tk.Backend]; !ok {
		return nil, "", errNotFound("the upload's backend is no longer configured")
	}
	if p := b.principal(c); p.ID != tk.Principal {
		return nil, "", errForbidden("this upload belongs to another principal")
	}
	return tk, id, nil
}

// eventID is stable per upload, so webhook receivers can drop duplicates
// (completing twice publishes twice).
func eventID(ticketID string) string {
	sum := sha256.Sum256([]byte(ticketID))
	return hex.EncodeToString(sum[:12])
}

type partURL struct {
	Number  int               `json:"number"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Size    int64             `json:"size"`
}

type partsResponse struct {
	Parts     []partURL `json:"parts"`
	PartCount int       `json:"part_count"`
	ExpiresAt time.Time `json:"expires_at"`
}

// parseNumbers reads "1-8,10,12-13" into part numbers within [1, count].
func parseNumbers(s string, count int) ([]int, error) {
	if s == "" {
		s = "1-" + strconv.Itoa(min(count, maxPartsPerRequest))
	}
	var out []int
	for _, item := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(item), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("%q is not a part number or range", item)
		}
		z := a
		if isRange {
			if z, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("%q is not a part number or range", item)
			}
		}
		if a < 1 || z > count || a > z {
			return nil, fmt.Errorf("%q is outside the parts 1-%d", item, count)
		}
		if len(out)+z-a+1 > maxPartsPerRequest {
			return nil, fmt.Errorf("at most %d parts per request", maxPartsPerRequest)
		}
		for n := a; n <= z; n++ {
			out = append(out, n)
		}
	}
	return out, nil
}

func (b *Broker) parts(c *gin.Context) {
	tk, _, e := b.ticketFor(c)
	if e != nil {
		abort(c, e)
		return
	}
	mp, ok := b.backends[tk.Backend].(drivers.Multipart)
	if !tk.Has(ticket.Multipart) || !ok {
		abort(c, badRequest("id", "this upload is not a multipart upload"))
		return
	}
	nums, err := parseNumbers(c.Query("numbers"), tk.Parts)
	if err != nil {
		abort(c, badRequest("numbers", "%s", err.Error()))
		return
	}
	expires := policy.DefaultExpires
	if p := b.profiles[tk.Profile]; p != nil {
		expires = p.Expires
	}
	resp := partsResponse{Parts: make([]partURL, 0, len(nums)), PartCount: tk.Parts, ExpiresAt: b.now().Add(expires).UTC().Truncate(time.Second)}
	for _, n := range nums {
		size := tk.PartSize
		if n == tk.Parts {
			size = tk.Size - int64(n-1)*tk.PartSize
		}
		start := time.Now()
		g, err := mp.PresignPart(c.Request.Context(), tk.Key, tk.UploadID, n, size, expires)
		b.metrics.Presign(tk.Backend, "part", time.Since(start))
		if err != nil {
			abort(c, storeError(tk.Backend, "presign part", err, &apiError{Status: http.StatusConflict, Code: "not_uploaded", Message: "the multipart upload no longer exists"}))
			return
		}
		if !g.ExpiresAt.IsZero() && g.ExpiresAt.Before(resp.ExpiresAt) {
			resp.ExpiresAt = g.ExpiresAt.UTC()
		}
		resp.Parts = append(resp.Parts, partURL{Number: n, Method: g.Method, URL: g.URL, Headers: g.Headers, Size: size})
	}
	c.JSON(http.StatusOK, &resp)
}

type completeRequest struct {
	Parts []drivers.Part `json:"parts"`
}

type completeResponse struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	ETag        string `json:"etag"`
	URL         string `json:"url"`
}

var errNotUploaded = &apiError{Status: http.StatusConflict, Code: "not_uploaded", Message: "nothing has been uploaded for this ticket yet"}

// call times one store call for the metrics.
func (b *Broker) call(backend, op string, f func() error) error {
	start := time.Now()
	err := f()
	b.metrics.BackendCall(backend, op, time.Since(start), err)
	return err
}

func (b *Broker) complete(c *gin.Context) {
	tk, id, e := b.ticketFor(c)
	if e != nil {
		abort(c, e)
		return
	}
	var req completeRequest
	if e := readComplete(c, &req); e != nil {
		abort(c, e)
		return
	}
	ctx := c.Request.Context()
	drv := b.backends[tk.Backend]
	var info drivers.ObjectInfo
	err := b.call(tk.Backend, "stat", func() (err error) { info, err = drv.Stat(ctx, tk.Key); return })
	switch {
	case errors.Is(err, drivers.ErrNotFound) && tk.Has(ticket.Multipart):
		// Not assembled yet; once it is, a second completion finds the
		// object above and answers the same.
		if e := b.assemble(ctx, tk, id, req.Parts); e != nil {
			abort(c, e)
			return
		}
		err = b.call(tk.Backend, "stat", func() (err error) { info, err = drv.Stat(ctx, tk.Key); return })
	case errors.Is(err, drivers.ErrNotFound):
		b.metrics.Completion(tk.Profile, tk.Backend, "missing", 0)
		abort(c, errNotUploaded)
		return
	}
	if err != nil {
		abort(c, storeError(tk.Backend, "stat", err, errNotUploaded))
		return
	}
	if reason, field, msg, err := b.verify(ctx, tk, drv, info); err != nil {
		abort(c, storeError(tk.Backend, "read", err, errNotUploaded))
		return
	} else if reason != "" {
		b.reject(ctx, tk, id, reason, info)
		abort(c, &apiError{Status: http.StatusUnprocessableEntity, Code: "rejected", Field: field,
			Message: "upload rejected (" + reason + "): " + msg + "; the object was deleted"})
		return
	}
	b.metrics.Completion(tk.Profile, tk.Backend, "ok", info.Size)
	b.publish(tk, id, events.Completed, "", info)
	ctype := info.ContentType
	if ctype == "" {
		ctype = tk.ContentType
	}
	writeComplete(c, &completeResponse{Key: tk.Key, Size: info.Size, ContentType: ctype, ETag: strings.Trim(info.ETag, `"`), URL: b.objectURL(c, tk)})
}

// readComplete reads a completion request. A single-PUT upload completes
// with {} (what the client library and the docs send), which needs no
// decoder; anything else is decoded strictly, like every other body.
func readComplete(c *gin.Context, req *completeRequest) *apiError {
	buf, e := readBody(c, true)
	if e != nil || buf == nil {
		return e
	}
	defer bodyBufs.Put(buf)
	if bytes.Equal(bytes.TrimSpace(buf.Bytes()), emptyObject) {
		return nil
	}
	return decodeJSON(buf.Bytes(), req)
}

var emptyObject = []byte("{}")

// writeComplete answers 200 with the completion, byte for byte as
// encoding/json (gin's c.JSON) would, without reflection.
func writeComplete(c *gin.Context, r *completeResponse) {
	buf := jsonBufs.Get().(*[]byte)
	b := appendComplete((*buf)[:0], r)
	writeJSONBytes(c, http.StatusOK, b)
	*buf = b
	jsonBufs.Put(buf)
}

// appendComplete appends r as encoding/json marshals completeResponse; a
// test compares the two.
func appendComplete(b []byte, r *completeResponse) []byte {
	b = append(b, `{"key":`...)
	b = appendJSONString(b, r.Key)
	b = append(b, `,"size":`...)
	b = strconv.AppendInt(b, r.Size, 10)
	b = append(b, `,"content_type":`...)
	b = appendJSONString(b, r.ContentType)
	b = append(b, `,"etag":`...)
	b = appendJSONString(b, r.ETag)
	b = append(b, `,"url":`...)
	b = appendJSONString(b, r.URL)
	return append(b, '}')
}

// objectURL is where a completed object is read: the profile's public base
// URL, or the broker's download route.
func (b *Broker) objectURL(c *gin.Context, tk *ticket.Ticket) string {
	if p := b.profiles[tk.Profile]; p != nil && p.PublicRead && p.PublicBaseURL != "" {
		return p.PublicBaseURL + "/" + tk.Key
	}
	return b.baseURL(c) + "/v1/downloads/" + tk.Key
}

func (b *Broker) publish(tk *ticket.Ticket, id string, typ events.Type, reason string, info drivers.ObjectInfo) {
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
	size := info.Size
	if size == 0 {
		size = tk.Size
	}
	b.events.Publish(events.Event{
		ID: eventID(id), Type: typ, Time: b.now().UTC(), Key: tk.Key, Backend: tk.Backend, Profile: tk.Profile,
		Principal: tk.Principal, Size: size, ContentType: tk.ContentType, Metadata: meta, Reason: reason,
	})
}

// reject deletes a non-conforming object; the store keeping it would make
// the broker a host for whatever the client slipped past the grant.
func (b *Broker) reject(ctx context.Context, tk *ticket.Ticket, id, reason string, info drivers.ObjectInfo) {
	drv := b.backends[tk.Backend]
	if err := b.call(tk.Backend, "delete", func() error { return drv.Delete(context.WithoutCancel(ctx), tk.Key) }); err != nil {
		b.log.ErrorContext(ctx, "could not delete a rejected upload", "backend", tk.Backend, "key", tk.Key, "err", err)
	}
	b.metrics.Completion(tk.Profile, tk.Backend, reason, 0)
	b.publish(tk, id, events.Rejected, reason, info)
}

// verify checks the stored object against the ticket. It returns the
// rejection reason (size, type, checksum, sniff) or "", and an error only
// when the store could not be read.
func (b *Broker) verify(ctx context.Context, tk *ticket.Ticket, drv drivers.Driver, info drivers.ObjectInfo) (reason, field, msg string, err error) {
	if info.Size != tk.Size {
		return "size", "size", fmt.Sprintf("%d bytes were uploaded, %d were granted", info.Size, tk.Size), nil
	}
	if got := policy.MediaType(info.ContentType); got != policy.MediaType(tk.ContentType) {
		return "type", "content_type", fmt.Sprintf("stored as %q, granted as %q", got, policy.MediaType(tk.ContentType)), nil
	}
	if tk.Checksum != nil {
		var sum []byte
		if info.ChecksumSHA256 != "" {
			sum, _ = base64.StdEncoding.DecodeString(info.ChecksumSHA256)
		}
		if len(sum) != sha256.Size {
			if sum, err = b.hashObject(ctx, tk, drv); err != nil {
				return "", "", "", err
			}
		}
		if !bytes.Equal(sum, tk.Checksum) {
			return "checksum", "checksum_sha256", "the content does not match checksum_sha256", nil
		}
	}
	if tk.Has(ticket.Sniff) {
		var head []byte
		if err := b.call(tk.Backend, "read", func() (err error) {
			head, err = drv.ReadRange(ctx, tk.Key, 0, policy.SniffLen)
			return
		}); err != nil {
			return "", "", "", err
		}
		if err := policy.Sniff(tk.ContentType, head); err != nil {
			return "sniff", "content_type", err.Error(), nil
		}
	}
	return "", "", "", nil
}

// hashObject computes the SHA-256 of a stored object whose store keeps no
// checksum, reading it in bounded chunks.
func (b *Broker) hashObject(ctx context.Context, tk *ticket.Ticket, drv drivers.Driver) ([]byte, error) {
	const chunk = 4 << 20
	h := sha256.New()
	for off := int64(0); off < tk.Size; off += chunk {
		var p []byte
		if err := b.call(tk.Backend, "read", func() (err error) { p, err = drv.ReadRange(ctx, tk.Key, off, chunk); return }); err != nil {
			return nil, err
		}
		h.Write(p)
		if int64(len(p)) < chunk {
			break
		}
	}
	return h.Sum(nil), nil
}

// assemble completes a multipart upload after checking the client's part
// list against what the store holds.
func (b *Broker) assemble(ctx context.Context, tk *ticket.Ticket, id string, parts []drivers.Part) *apiError {
	mp, ok := b.backends[tk.Backend].(drivers.Multipart)
	if !ok {
		return badRequest("", "backend %s no longer supports multipart uploads", tk.Backend)
	}
	if len(parts) != tk.Parts {
		return badRequest("parts", "expected %d parts, got %d", tk.Parts, len(parts))
	}
	parts = slices.Clone(parts)
	slices.SortFunc(parts, func(a, b drivers.Part) int { return a.Number - b.Number })
	for i, p := range parts {
		if p.Number != i+1 {
			return badRequest("parts", "parts must be numbered 1 to %d, each once", tk.Parts)
		}
		if p.ETag == "" {
			return badRequest(fmt.Sprintf("parts.%d.etag", i), "etag is required")
		}
	}
	var listed []drivers.Part
	err := b.call(tk.Backend, "list_parts", func() (err error) { listed, err = mp.ListParts(ctx, tk.Key, tk.UploadID); return })
	if err != nil {
		return storeError(tk.Backend, "list parts", err, &apiError{Status: http.StatusConflict, Code: "not_uploaded", Message: "the multipart upload does not exist (aborted, or already completed and deleted)"})
	}
	held := make(map[int]drivers.Part, len(listed))
	for _, p := range listed {
		held[p.Number] = p
	}
	var total int64
	for i := range parts {
		h, ok := held[parts[i].Number]
		if !ok {
			return &apiError{Status: http.StatusConflict, Code: "not_uploaded", Field: "parts", Message: fmt.Sprintf("part %d has not been uploaded", parts[i].Number)}
		}
		if strings.Trim(h.ETag, `"`) != strings.Trim(parts[i].ETag, `"`) {
			return badRequest("parts", "part %d: etag does not match the uploaded part", parts[i].Number)
		}
		parts[i].Size = h.Size
		total += h.Size
	}
	if total != tk.Size {
		if err := b.call(tk.Backend, "abort_multipart", func() error { return mp.AbortMultipart(context.WithoutCancel(ctx), tk.Key, tk.UploadID) }); err != nil {
			b.log.ErrorContext(ctx, "could not abort a rejected multipart upload", "backend", tk.Backend, "key", tk.Key, "err", err)
		}
		b.metrics.Completion(tk.Profile, tk.Backend, "size", 0)
		b.publish(tk, id, events.Rejected, "size", drivers.ObjectInfo{Size: total})
		return &apiError{Status: http.StatusUnprocessableEntity, Code: "rejected", Field: "size",
			Message: fmt.Sprintf("upload rejected (size): the parts hold %d bytes, %d were granted; the upload was aborted", total, tk.Size)}
	}
	err = b.call(tk.Backend, "complete_multipart", func() error { _, err := mp.CompleteMultipart(ctx, tk.Key, tk.UploadID, parts); return err })
	if err != nil {
		return storeError(tk.Backend, "complete multipart upload", err, &apiError{Status: http.StatusConflict, Code: "not_uploaded", Message: "the multipart upload no longer exists"})
	}
	return nil
}

func (b *Broker) abortUpload(c *gin.Context) {
	tk, id, e := b.ticketFor(c)
	if e != nil {
		abort(c, e)
		return
	}
	ctx := c.Request.Context()
	drv := b.backends[tk.Backend]
	if mp, ok := drv.(drivers.Multipart); ok && tk.Has(ticket.Multipart) {
		err := b.call(tk.Backend, "abort_multipart", func() error { return mp.AbortMultipart(ctx, tk.Key, tk.UploadID) })
		if err != nil && !errors.Is(err, drivers.ErrNotFound) {
			abort(c, storeError(tk.Backend, "abort multipart upload", err, errNotFound("no such upload")))
			return
		}
	}
	if err := b.call(tk.Backend, "delete", func() error { return drv.Delete(ctx, tk.Key) }); err != nil && !errors.Is(err, drivers.ErrNotFound) {
		abort(c, storeError(tk.Backend, "delete", err, errNotFound("no such upload")))
		return
	}
	b.publish(tk, id, events.Aborted, "", drivers.ObjectInfo{})
	c.Status(http.StatusNoContent)
}
