package companion

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/upbroker/upbroker/broker/policy"
)

// defaultKeyTemplate is policy's default, used when a profile sets none.
const defaultKeyTemplate = "{profile}/{principal}/{uuid}{ext}"

// tmplSeg is one piece of a key template: a literal, or a placeholder
// name. policy keeps its parsed template to itself; this reading only
// needs the pieces' order, and runs after policy.Compile accepted the
// template.
type tmplSeg struct {
	literal string
	ph      string
}

func parseTemplate(t string) ([]tmplSeg, error) {
	var segs []tmplSeg
	for t != "" {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			segs = append(segs, tmplSeg{literal: t})
			break
		}
		if i > 0 {
			segs = append(segs, tmplSeg{literal: t[:i]})
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return nil, errors.New("unclosed { in template")
		}
		segs = append(segs, tmplSeg{ph: t[i+1 : i+j]})
		t = t[i+j+1:]
	}
	return segs, nil
}

func hasPrincipal(segs []tmplSeg) bool {
	for _, s := range segs {
		if s.ph == "principal" {
			return true
		}
	}
	return false
}

// ownerPattern matches exactly the keys that the template can make for
// this principal and profile: the principal's prefix, then the shapes of
// {uuid} (32 hex digits), {date} and {ext}. Matching the whole key, and not
// only a prefix, keeps principal "ann" off keys made for "ann-2" even when
// the template writes something other than "/" after {principal}.
func (h *Handler) ownerPattern(principal string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for _, s := range h.tmpl {
		switch s.ph {
		case "":
			b.WriteString(regexp.QuoteMeta(s.literal))
		case "principal":
			b.WriteString(regexp.QuoteMeta(policy.SafeSegment(principal)))
		case "profile":
			b.WriteString(regexp.QuoteMeta(policy.SafeSegment(h.prof.Name)))
		case "uuid":
			b.WriteString("[0-9a-f]{32}")
		case "date":
			b.WriteString(`[0-9]{4}-[0-9]{2}-[0-9]{2}`)
		case "ext":
			b.WriteString(`(?:\.[a-z0-9]{1,10})?`)
		default:
			return nil, fmt.Errorf("unknown placeholder {%s}", s.ph)
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// checkOwnedKey validates a client's key query value: the key invariant
// first (it never reaches the store otherwise), then ownership.
func (h *Handler) checkOwnedKey(principal, key string) *apiError {
	if key == "" {
		return badField("key", "required")
	}
	if err := policy.CheckKey(key); err != nil {
		return badField("key", "not a valid object key: %v", err)
	}
	re, err := h.ownerPattern(principal)
	if err != nil {
		return &apiError{status: 500, msg: "internal error; see the server log", cause: err}
	}
	if !re.MatchString(key) {
		return errForbidden("key: this key was not made for you under profile " + h.prof.Name)
	}
	return nil
}

// maxUploadIDLen bounds an upload id; S3's run to about 200 characters.
const maxUploadIDLen = 1024

// checkUploadID accepts the alphabets of S3 (letters, digits, . _ -),
// MinIO (base64url) and other S3-compatible stores (standard base64, ~).
// The id only ever travels as a query parameter to the store, but a
// bounded alphabet keeps control bytes and separators out of logs and
// signatures.
func checkUploadID(id string) *apiError {
	if id == "" || len(id) > maxUploadIDLen {
		return badField("uploadId", "must be 1 to %d characters", maxUploadIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~+/=", c) >= 0:
		default:
			return badField("uploadId", "character %q is not allowed", c)
		}
	}
	return nil
}
