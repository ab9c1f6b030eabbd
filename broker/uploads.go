package broker

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/upbroker/upbroker/auth"
	"github.com/upbroker/upbroker/broker/policy"
	"github.com/upbroker/upbroker/broker/ticket"
	"github.com/upbroker/upbroker/drivers"
	"github.com/upbroker/upbroker/ratelimit"
)

// Reserved metadata that every upload carries: who uploaded it under which
// profile. Downloads decide ownership from them, statelessly.
const (
	MetaPrincipal = "upbrokerprincipal"
	MetaProfile   = "upbrokerprofile"
)

type createRequest struct {
	Filename       *string           `json:"filename"`
	ContentType    *string           `json:"content_type"`
	Size           *int64            `json:"size"`
	Profile        string            `json:"profile"`
	ChecksumSHA256 string            `json:"checksum_sha256"`
	Metadata       map[string]string `json:"metadata"`
}

// createInput is a decoded create request. Absent and empty strings are
// alike to the handler; hasSize tells an absent size from zero.
type createInput struct {
	filename, contentType, profile, checksum string
	size                                     int64
	hasSize                                  bool
	metadata                                 map[string]string
}

// readCreate reads and decodes a create request.
func readCreate(c *gin.Context) (createInput, *apiError) {
	buf, e := readBody(c, false)
	if e != nil {
		return createInput{}, e
	}
	defer bodyBufs.Put(buf)
	var in createInput
	if decodeCreateFast(buf.Bytes(), &in) {
		return in, nil
	}
	// Anything the fast path does not take is decoded strictly, and its
	// errors are the reference.
	req := new(createRequest)
	if e := decodeJSON(buf.Bytes(), req); e != nil {
		return createInput{}, e
	}
	in = createInput{profile: req.Profile, checksum: req.ChecksumSHA256, metadata: req.Metadata}
	if req.Filename != nil {
		in.filename = *req.Filename
	}
	if req.ContentType != nil {
		in.contentType = *req.ContentType
	}
	if req.Size != nil {
		in.size, in.hasSize = *req.Size, true
	}
	return in, nil
}

// decodeCreateFast decodes the usual shape of a create request without
// reflection: one object of the known names, each at most once; strings
// of printable ASCII without escapes; a size of plain digits; a metadata
// object of such strings. Every string is a substring of one copy of the
// body. On anything else (escapes, other bytes, null, numbers with a sign,
// fraction or exponent, unknown or repeated names) it returns false and
// the strict decoder runs instead, so the fast path can only ever accept
// what the strict one accepts, with the same result; a fuzz test holds it
// to that.
func decodeCreateFast(body []byte, in *createInput) bool {
	s := string(body)
	i := skipJSONSpace(s, 0)
	if i >= len(s) || s[i] != '{' {
		return false
	}
	i = skipJSONSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return skipJSONSpace(s, i+1) == len(s)
	}
	var seen uint8
	for {
		name, j, ok := scanPlainString(s, i)
		if !ok {
			return false
		}
		if i = skipJSONSpace(s, j); i >= len(s) || s[i] != ':' {
			return false
		}
		i = skipJSONSpace(s, i+1)
		var bit uint8
		switch name {
		case "filename":
			bit = 1
			in.filename, j, ok = scanPlainString(s, i)
		case "content_type":
			bit = 2
			in.contentType, j, ok = scanPlainString(s, i)
		case "size":
			bit = 4
			in.size, j, ok = scanPlainInt(s, i)
			in.hasSize = true
		case "profile":
			bit = 8
			in.profile, j, ok = scanPlainString(s, i)
		case "checksum_sha256":
			bit = 16
			in.checksum, j, ok = scanPlainString(s, i)
		case "metadata":
			bit = 32
			in.metadata, j, ok = scanPlainObject(s, i)
		}
		if bit == 0 || !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if i = skipJSONSpace(s, j); i >= len(s) {
			return false
		}
		switch s[i] {
		case ',':
			i = skipJSONSpace(s, i+1)
		case '}':
			return skipJSONSpace(s, i+1) == len(s)
		default:
			return false
		}
	}
}

func skipJSONSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// scanPlainString reads a string at s[i] that needs no unescaping.
func scanPlainString(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			return s[i+1 : j], j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", j, false
		}
	}
	return "", len(s), false
}

// scanPlainInt reads 1 to 18 digits without a leading zero (or a lone 0)
// and makes sure no fraction or exponent follows.
func scanPlainInt(s string, i int) (int64, int, bool) {
	j := i
	var n int64
	for j < len(s) && j-i < 18 && '0' <= s[j] && s[j] <= '9' {
		n = n*10 + int64(s[j]-'0')
		j++
	}
	if j == i || (s[i] == '0' && j-i > 1) {
		return 0, j, false
	}
	if j < len(s) && ('0' <= s[j] && s[j] <= '9' || s[j] == '.' || s[j] == 'e' || s[j] == 'E') {
		return 0, j, false
	}
	return n, j, true
}

// scanPlainObject reads an object of plain strings, each name once.
func scanPlainObject(s string, i int) (map[string]string, int, bool) {
	if i >= len(s) || s[i] != '{' {
		return nil, i, false
	}
	m := make(map[string]string, 4)
	i = skipJSONSpace(s, i+1)
	if i < len(s) && s[i] == '}' {
		return m, i + 1, true
	}
	for {
		k, j, ok := scanPlainString(s, i)
		if !ok {
			return nil, j, false
		}
		if i = skipJSONSpace(s, j); i >= len(s) || s[i] != ':' {
			return nil, i, false
		}
		v, j, ok := scanPlainString(s, skipJSONSpace(s, i+1))
		if _, dup := m[k]; !ok || dup {
			return nil, j, false
		}
		m[k] = v
		if i = skipJSONSpace(s, j); i >= len(s) {
			return nil, i, false
		}
		switch s[i] {
		case ',':
			i = skipJSONSpace(s, i+1)
		case '}':
			return m, i + 1, true
		default:
			return nil, i, false
		}
	}
}

type multipartInfo struct {
	PartSize  int64  `json:"part_size"`
	PartCount int    `json:"part_count"`
	PartsURL  string `json:"parts_url"`
}

type grantResponse struct {
	ID          string           `json:"id"`
	Key         string           `json:"key"`
	Backend     string           `json:"backend"`
	Profile     string           `json:"profile"`
	ExpiresAt   time.Time        `json:"expires_at"`
	Upload      *drivers.Grant   `json:"upload"`
	Multipart   *multipartInfo   `json:"multipart"`
	Enforced    drivers.Enforced `json:"enforced"`
	CompleteURL string           `json:"complete_url"`
}

// baseURL is server.public_url, or what the request came in on when it is
// not configured (development).
func (b *Broker) baseURL(c *gin.Context) string {
	if b.publicURL != "" {
		return b.publicURL
	}
	scheme := "http"
	if c.Request.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host
}

func (b *Broker) principal(c *gin.Context) auth.Principal {
	p, ok := PrincipalFrom(c)
	if !ok {
		// The auth middleware always runs first; a missing principal is a
		// wiring bug, and anonymous is the least privileged answer.
		return auth.Anonymous
	}
	return p
}

func (b *Broker) createUpload(c *gin.Context) {
	var prof, backend string
	var size int64
	e := b.grant(c, &prof, &backend, &size)
	result := "ok"
	if e != nil {
		result = e.Code
		size = 0
		abort(c, e)
	}
	b.metrics.Grant(prof, backend, result, size)
}

func (b *Broker) grant(c *gin.Context, profName, backendName *string, granted *int64) *apiError {
	p := b.principal(c)
	req, e := readCreate(c)
	if e != nil {
		return e
	}
	name := req.profile
	if name == "" {
		name = b.def
	}
	if name == "" {
		return badRequest("profile", "profile is required (no default_profile is configured)")
	}
	prof := b.profiles[name]
	if prof == nil {
		return badRequest("profile", "unknown profile %q", name)
	}
	*profName, *backendName = prof.Name, prof.Backend
	if !p.Allows(prof.Name) {
		return errForbidden("you may not use profile " + strconv.Quote(prof.Name))
	}
	if req.filename == "" {
		return badRequest("filename", "filename is required")
	}
	if req.contentType == "" {
		return badRequest("content_type", "content_type is required")
	}
	ctype, err := policy.NormalizeType(req.contentType)
	if err != nil {
		if errors.Is(err, policy.ErrType) {
			return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_type", Field: "content_type", Message: err.Error()}
		}
		return badRequest("content_type", "%s", err.Error())
	}
	if !prof.AllowsType(ctype) {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_type", Field: "content_type",
			Message: fmt.Sprintf("content type %s is not allowed by profile %s", ctype, prof.Name)}
	}
	if !req.hasSize {
		return badRequest("size", "size is required")
	}
	size := req.size
	if size <= 0 {
		return badRequest("size", "size must be a positive integer")
	}
	if size > prof.MaxSize {
		return errTooLarge("size", fmt.Sprintf("size %d exceeds the profile's max_size of %d bytes", size, prof.MaxSize))
	}
	var checksum []byte
	if req.checksum != "" {
		checksum, err = base64.StdEncoding.DecodeString(req.checksum)
		if err != nil || len(checksum) != sha256.Size {
			return badRequest("checksum_sha256", "checksum_sha256 must be the base64 of 32 bytes")
		}
	}
	if err := policy.CheckMetadata(req.metadata); err != nil {
		var fe *policy.FieldError
		if errors.As(err, &fe) {
			return badRequest(fe.Field, "%s", fe.Msg)
		}
		return badRequest("metadata", "%s", err.Error())
	}
	drv := b.backends[prof.Backend]
	caps := drv.Capabilities()

	// Limits are taken only for requests that would be granted, so that
	// malformed requests cost the caller nothing.
	if e := b.takeLimit(c, p, size); e != nil {
		return e
	}

	key, err := prof.Key(p.ID, req.filename, b.now())
	if err != nil {
		return errInternal(err)
	}
	// The decoded map is the request's own; the reserved names, which
	// CheckMetadata refused from the client, join it.
	meta := req.metadata
	if meta == nil {
		meta = make(map[string]string, 2)
	}
	meta[MetaPrincipal] = policy.PrincipalTag(p.ID)
	meta[MetaProfile] = prof.Name
	cons := drivers.Constraints{
		ContentType: ctype, Size: size, MaxSize: size, Metadata: meta, NoOverwrite: true, Expires: prof.Expires,
	}
	if checksum != nil {
		cons.ChecksumSHA256 = req.checksum
	}
	tk := &ticket.Ticket{
		Key: key, Backend: prof.Backend, Profile: prof.Name, Principal: p.ID, ContentType: ctype,
		Size: size, Checksum: checksum,
	}
	if prof.Sniff {
		tk.Flags |= ticket.Sniff
	}
	resp := grantResponse{Key: key, Backend: prof.Backend, Profile: prof.Name}
	ctx := c.Request.Context()
	mp, hasMP := drv.(drivers.Multipart)
	useMP := hasMP && caps.Multipart && (size > prof.MultipartThreshold || caps.MaxSinglePut > 0 && size > caps.MaxSinglePut)
	switch {
	case useMP:
		partSize, count, err := planParts(size, prof.PartSize, caps)
		if err != nil {
			return errTooLarge("size", err.Error())
		}
		start := time.Now()
		id, err := mp.CreateMultipart(ctx, key, cons)
		b.metrics.BackendCall(prof.Backend, "create_multipart", time.Since(start), err)
		if err != nil {
			return storeError(prof.Backend, "create multipart upload", err, errNotFound("bucket not found"))
		}
		tk.Flags |= ticket.Multipart
		tk.UploadID, tk.PartSize, tk.Parts = id, partSize, count
		tk.Expires = b.now().Add(prof.Expires)
		resp.Multipart = &multipartInfo{PartSize: partSize, PartCount: count}
		resp.Enforced = drivers.Enforced{Size: drivers.AfterUpload, ContentType: drivers.BySignature, Checksum: drivers.NotEnforced, NoOverwrite: drivers.NotEnforced}
		if checksum != nil {
			resp.Enforced.Checksum = drivers.AfterUpload
		}
	default:
		if caps.MaxSinglePut > 0 && size > caps.MaxSinglePut {
			return errTooLarge("size", fmt.Sprintf("size %d exceeds what backend %s takes in one upload (%d bytes)", size, prof.Backend, caps.MaxSinglePut))
		}
		var g drivers.Grant
		op, base := "put", caps.Put
		start := time.Now()
		if pp, ok := drv.(drivers.PostPresigner); ok && prof.Post {
			op, base = "post", caps.Post
			cons.MaxSize = prof.MaxSize
			tk.Flags |= ticket.Post
			g, err = pp.PresignPost(ctx, key, cons)
		} else {
			g, err = drv.PresignPut(ctx, key, cons)
		}
		b.metrics.Presign(prof.Backend, op, time.Since(start))
		if err != nil {
			return storeError(prof.Backend, "presign "+op, err, errNotFound("bucket not found"))
		}
		tk.Expires = g.ExpiresAt
		if tk.Expires.IsZero() {
			tk.Expires = b.now().Add(prof.Expires)
		}
		resp.Upload = &g
		resp.Enforced = enforced(g.Enforced, base, checksum != nil)
	}
	// Tickets carry whole seconds; rounding down never extends a grant.
	tk.Expires = tk.Expires.Truncate(time.Second)
	id, err := b.tickets.Sign(tk)
	if err != nil {
		return errInternal(err)
	}
	base := b.baseURL(c)
	resp.ID = id
	resp.ExpiresAt = tk.Expires.UTC()
	resp.CompleteURL = base + "/v1/uploads/" + id + "/complete"
	if resp.Multipart != nil {
		resp.Multipart.PartsURL = base + "/v1/uploads/" + id + "/parts"
	}
	*granted = size
	writeGrant(c, &resp)
	return nil
}

// writeGrant answers 201 with the grant. It writes the JSON that
// encoding/json (gin's c.JSON) would, byte for byte, without reflection:
// the grant is the hot path, and reflection was an eighth of its cost.
func writeGrant(c *gin.Context, g *grantResponse) {
	buf := jsonBufs.Get().(*[]byte)
	b := appendGrant((*buf)[:0], g)
	writeJSONBytes(c, http.StatusCreated, b)
	*buf = b
	jsonBufs.Put(buf)
}

// appendGrant appends g as encoding/json marshals grantResponse; a test
// compares the two.
func appendGrant(b []byte, g *grantResponse) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, g.ID)
	b = append(b, `,"key":`...)
	b = appendJSONString(b, g.Key)
	b = append(b, `,"backend":`...)
	b = appendJSONString(b, g.Backend)
	b = append(b, `,"profile":`...)
	b = appendJSONString(b, g.Profile)
	b = append(b, `,"expires_at":`...)
	b = appendJSONTime(b, g.ExpiresAt)
	b = append(b, `,"upload":`...)
	if u := g.Upload; u == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"method":`...)
		b = appendJSONString(b, u.Method)
		b = append(b, `,"url":`...)
		b = appendJSONString(b, u.URL)
		b = append(b, `,"headers":`...)
		b = appendJSONMap(b, u.Headers)
		b = append(b, `,"fields":`...)
		b = appendJSONMap(b, u.Fields)
		b = append(b, '}')
	}
	b = append(b, `,"multipart":`...)
	if m := g.Multipart; m == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, `{"part_size":`...)
		b = strconv.AppendInt(b, m.PartSize, 10)
		b = append(b, `,"part_count":`...)
		b = strconv.AppendInt(b, int64(m.PartCount), 10)
		b = append(b, `,"parts_url":`...)
		b = appendJSONString(b, m.PartsURL)
		b = append(b, '}')
	}
	b = append(b, `,"enforced":{"size":`...)
	b = appendJSONString(b, string(g.Enforced.Size))
	b = append(b, `,"content_type":`...)
	b = appendJSONString(b, string(g.Enforced.ContentType))
	b = append(b, `,"checksum":`...)
	b = appendJSONString(b, string(g.Enforced.Checksum))
	b = append(b, `,"overwrite":`...)
	b = appendJSONString(b, string(g.Enforced.NoOverwrite))
	b = append(b, `},"complete_url":`...)
	b = appendJSONString(b, g.CompleteURL)
	return append(b, '}')
}

// enforced reports, per constraint, who guarantees it: the store's
// signature where the grant says so, else the completion check (size, type
// and a declared checksum), else nobody.
func enforced(g, caps drivers.Enforced, checksum bool) drivers.Enforced {
	if g == (drivers.Enforced{}) {
		g = caps
	}
	pick := func(e drivers.Enforcement, checked bool) drivers.Enforcement {
		switch {
		case e == drivers.BySignature:
			return e
		case checked:
			return drivers.AfterUpload
		}
		return drivers.NotEnforced
	}
	return drivers.Enforced{
		Size:        pick(g.Size, true),
		ContentType: pick(g.ContentType, true),
		Checksum:    pick(g.Checksum, checksum),
		NoOverwrite: pick(g.NoOverwrite, false),
	}
}

// planParts picks a part size: the profile's, raised to the store's
// minimum, and grown until the parts fit the store's maximum count.
func planParts(size, want int64, caps drivers.Capabilities) (int64, int, error) {
	ps := want
	if ps < caps.MinPartSize {
		ps = caps.MinPartSize
	}
	if ps <= 0 {
		ps = policy.DefaultPartSize
	}
	maxParts := int64(caps.MaxParts)
	if maxParts <= 0 {
		maxParts = 10000
	}
	if (size+ps-1)/ps > maxParts {
		ps = (size + maxParts - 1) / maxParts
		const mib = 1 << 20
		ps = (ps + mib - 1) / mib * mib
	}
	if caps.MaxPartSize > 0 && ps > caps.MaxPartSize {
		return 0, 0, fmt.Errorf("size %d needs parts larger than the backend's %d-byte maximum", size, caps.MaxPartSize)
	}
	return ps, int((size + ps - 1) / ps), nil
}

// takeLimit charges one grant of n bytes to the caller.
func (b *Broker) takeLimit(c *gin.Context, p auth.Principal, n int64) *apiError {
	if _, ok := b.limiter.(ratelimit.Unlimited); ok {
		// No rate_limit configured: spare working out the client's IP.
		return nil
	}
	key := p.ID
	if p.Anonymous {
		key = "ip:" + c.ClientIP()
	}
	d, err := b.limiter.Take(c.Request.Context(), key, n)
	if err != nil {
		if strings.EqualFold(b.o.Config.RateLimit.OnStoreError, "allow") {
			b.log.WarnContext(c, "rate limit store failed; allowing (rate_limit.on_store_error: allow)", "err", err, "request_id", c.GetString(ctxRequestID))
			return nil
		}
		b.log.ErrorContext(c, "rate limit store failed; denying (rate_limit.on_store_error: deny)", "err", err, "request_id", c.GetString(ctxRequestID))
		return &apiError{Status: http.StatusServiceUnavailable, Code: "backend_unavailable", Message: "the rate limiter is unavailable; try again later", cause: err}
	}
	if !d.Allowed && d.Reason == ratelimit.ReasonUnavailable {
		// The limiter already applied on_store_error deny and logged it:
		// the store failed, not the caller, so this is no 429.
		return &apiError{Status: http.StatusServiceUnavailable, Code: "backend_unavailable", Message: "the rate limiter is unavailable; try again later"}
	}
	if !d.Allowed {
		b.metrics.RateLimited(d.Reason)
		msg := "too many upload grants; slow down"
		if d.Reason == "bytes" {
			msg = "daily upload quota exhausted"
		}
		retry := d.RetryAfter
		if retry <= 0 {
			retry = time.Second
		}
		return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: msg, RetryAfter: retry}
	}
	return nil
}
