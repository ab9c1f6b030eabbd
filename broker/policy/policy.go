// Package policy decides what may be uploaded under a profile: which content
// types, how large, under which object key, and whether the bytes look like
// what the client declared. Profiles are compiled once, when the broker
// starts, so that a request does no config parsing.
package policy

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"strings"
	"time"

	"github.com/upbroker/upbroker/config"
)

// Defaults for profile settings left at zero.
const (
	DefaultExpires            = 5 * time.Minute
	MaxExpires                = 7 * 24 * time.Hour
	DefaultMultipartThreshold = 64 << 20
	DefaultPartSize           = 16 << 20
	// MaxKeyLen is S3's limit, the tightest of the supported stores.
	MaxKeyLen = 1024
)

// ErrType and ErrSize classify refusals so the broker can pick a status.
var (
	ErrType = errors.New("content type not allowed")
	ErrSize = errors.New("size not allowed")
)

// Profile is a compiled config.Profile.
type Profile struct {
	Name               string
	Backend            string
	MaxSize            int64
	Expires            time.Duration
	Sniff              bool
	Post               bool
	MultipartThreshold int64
	PartSize           int64
	PublicRead         bool
	PublicBaseURL      string

	exact    map[string]bool
	families map[string]bool // "image" for image/*
	any      bool            // */*
	tmpl     []segment
	hasDate  bool // the template has {date}
	safeName string
}

// Compile checks a profile and precomputes what requests need.
func Compile(name string, p config.Profile) (*Profile, error) {
	c := &Profile{
		Name: name, Backend: p.Backend, MaxSize: int64(p.MaxSize), Expires: p.Expires,
		Sniff: p.Sniff, MultipartThreshold: int64(p.MultipartThreshold), PartSize: int64(p.PartSize),
		PublicRead: p.PublicRead, PublicBaseURL: strings.TrimRight(p.PublicBaseURL, "/"),
		exact: map[string]bool{}, families: map[string]bool{}, safeName: SafeSegment(name),
	}
	field := func(k string) string { return "profiles." + name + "." + k }
	switch strings.ToLower(p.Method) {
	case "", "put":
	case "post":
		c.Post = true
	default:
		return nil, fmt.Errorf("%s: %q is not put or post", field("method"), p.Method)
	}
	if c.MaxSize <= 0 {
		return nil, fmt.Errorf("%s: must be positive", field("max_size"))
	}
	switch {
	case c.Expires == 0:
		c.Expires = DefaultExpires
	case c.Expires < time.Second:
		return nil, fmt.Errorf("%s: %v is shorter than 1s", field("expires"), c.Expires)
	case c.Expires > MaxExpires:
		// Stores refuse longer signatures (S3: 7 days), so cap rather than
		// hand out URLs that fail.
		c.Expires = MaxExpires
	}
	if c.MultipartThreshold <= 0 {
		c.MultipartThreshold = DefaultMultipartThreshold
	}
	if c.PartSize <= 0 {
		c.PartSize = DefaultPartSize
	}
	if len(p.ContentTypes) == 0 {
		return nil, fmt.Errorf("%s: the allow-list is empty", field("content_types"))
	}
	for i, t := range p.ContentTypes {
		t = strings.ToLower(strings.TrimSpace(t))
		typ, sub, ok := strings.Cut(t, "/")
		if !ok || typ == "" || sub == "" || strings.ContainsAny(t, " ;") {
			return nil, fmt.Errorf("%s[%d]: %q is not a media type like image/png or image/*", field("content_types"), i, p.ContentTypes[i])
		}
		switch {
		case typ == "*" && sub == "*":
			c.any = true
		case sub == "*":
			c.families[typ] = true
		case typ == "*":
			return nil, fmt.Errorf("%s[%d]: %q: only type/* wildcards are supported", field("content_types"), i, p.ContentTypes[i])
		default:
			c.exact[t] = true
		}
	}
	tmpl := p.Key
	if tmpl == "" {
		tmpl = "{profile}/{principal}/{uuid}{ext}"
	}
	segs, err := parseTemplate(tmpl)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field("key"), err)
	}
	c.tmpl = segs
	for _, sg := range segs {
		c.hasDate = c.hasDate || sg.kind == phDate
	}
	// Prove the template safe with the extremes of every placeholder, so a
	// bad template fails at start and not on some request.
	for _, probe := range []struct{ principal, ext string }{{"p", ""}, {strings.Repeat("x", 64), ".abcdefghij"}} {
		k := c.key(probe.principal, []byte(probe.ext), []byte("00000000000000000000000000000000"), []byte(time.DateOnly))
		if err := CheckKey(k); err != nil {
			return nil, fmt.Errorf("%s: template %q makes unsafe keys (%q): %w", field("key"), tmpl, k, err)
		}
	}
	return c, nil
}

// NormalizeType parses a declared content type and returns the form that is
// signed and compared: lower-case "type/subtype", with a charset parameter
// kept only for text types (the one parameter stores and browsers honour).
func NormalizeType(declared string) (string, error) {
	if plainType(declared) {
		// What ParseMediaType would return unchanged, without its map.
		return declared, nil
	}
	return normalizeType(declared)
}

func normalizeType(declared string) (string, error) {
	mt, params, err := mime.ParseMediaType(declared)
	if err != nil || !strings.Contains(mt, "/") || strings.Contains(mt, "*") {
		return "", fmt.Errorf("%q is not a valid media type", declared)
	}
	for k := range params {
		if k != "charset" || !strings.HasPrefix(mt, "text/") {
			return "", fmt.Errorf("%w: parameter %q is not supported", ErrType, k)
		}
	}
	if cs, ok := params["charset"]; ok {
		cs = strings.ToLower(cs)
		for _, r := range cs {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return "", fmt.Errorf("%w: charset %q is not supported", ErrType, cs)
			}
		}
		return mt + "; charset=" + cs, nil
	}
	return mt, nil
}

// plainType tells whether t is already a normalized type without
// parameters: lower-case letters, digits and -+._ only (all of them MIME
// token bytes), with one "/" between two non-empty parts.
func plainType(t string) bool {
	slash := -1
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '+', c == '.', c == '_':
		case c == '/' && slash < 0:
			slash = i
		default:
			return false
		}
	}
	return slash > 0 && slash < len(t)-1
}

// MediaType is the part of a normalized type before any parameter.
func MediaType(t string) string {
	if i := strings.IndexByte(t, ';'); i >= 0 {
		t = t[:i]
	}
	return strings.ToLower(strings.TrimSpace(t))
}

// AllowsType tells whether a normalized type is on the allow-list.
func (p *Profile) AllowsType(normalized string) bool {
	mt := MediaType(normalized)
	if p.any || p.exact[mt] {
		return true
	}
	typ, _, _ := strings.Cut(mt, "/")
	return p.families[typ]
}

// Extension takes a safe extension from a client's filename: the last
// dot-suffix, lower-cased, 1 to 10 ASCII letters or digits, with its dot;
// anything else gives "".
func Extension(filename string) string {
	var b [maxExt]byte
	return string(appendExtension(b[:0], filename))
}

// maxExt is the longest extension: a dot and 10 bytes.
const maxExt = 11

// appendExtension appends Extension(filename) to b.
func appendExtension(b []byte, filename string) []byte {
	i := strings.LastIndexByte(filename, '.')
	if i < 0 || i == len(filename)-1 || len(filename)-i-1 > maxExt-1 {
		return b
	}
	ext := filename[i+1:]
	start := len(b)
	b = append(b, '.')
	for j := 0; j < len(ext); j++ {
		c := ext[j]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		default:
			return b[:start]
		}
		b = append(b, c)
	}
	return b
}

func safeSegmentByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// SafeSegment turns a principal (or any name) into one path segment. Names
// of 1-64 bytes of [A-Za-z0-9._-] stay as they are, unless they begin with
// "_" or ".", end with ".", or hold ".." (so that no neighbour in a template
// can make a dot segment or a ".."); those and everything else become "_"
// and 16 hex digits of their SHA-256. Only rewritten names begin with "_",
// so two principals never share a segment unless their hashes collide.
func SafeSegment(s string) string {
	ok := len(s) >= 1 && len(s) <= 64 && s[0] != '_' && s[0] != '.' && s[len(s)-1] != '.' && !strings.Contains(s, "..")
	for i := 0; ok && i < len(s); i++ {
		ok = safeSegmentByte(s[i])
	}
	if ok {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "_" + hex.EncodeToString(sum[:8])
}

// NewUUID is 32 hex digits of randomness (a v4 UUID without dashes would
// waste 6 bits for nothing).
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// Key makes an object key for a principal's upload of a file with this
// name, at time now.
func (p *Profile) Key(principal, filename string, now time.Time) (string, error) {
	// The parts are made in stack arrays so that the key itself is the one
	// allocation.
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go 1.24+)
	var uuid [32]byte
	hex.Encode(uuid[:], raw[:])
	var ext [maxExt]byte
	var date [len(time.DateOnly)]byte
	d := date[:0]
	if p.hasDate {
		d = now.UTC().AppendFormat(d, time.DateOnly)
	}
	k := p.key(SafeSegment(principal), appendExtension(ext[:0], filename), uuid[:], d)
	// Compile proved the template safe; checking again costs little and
	// keeps a future placeholder from slipping past.
	if err := CheckKey(k); err != nil {
		return "", fmt.Errorf("policy: generated key %q: %w", k, err)
	}
	return k, nil
}

// CheckKey enforces the key invariant: 1-1024 bytes of [A-Za-z0-9._/-], no
// leading "/", no "//", no "." or ".." segment, no trailing "/".
func CheckKey(k string) error {
	if k == "" || len(k) > MaxKeyLen {
		return errors.New("key length out of range")
	}
	if k[0] == '/' || k[len(k)-1] == '/' {
		return errors.New("key begins or ends with /")
	}
	start := 0
	for i := 0; i <= len(k); i++ {
		if i < len(k) {
			c := k[i]
			if c != '/' {
				if !safeSegmentByte(c) {
					return fmt.Errorf("byte %q not allowed in a key", c)
				}
				continue
			}
		}
		switch k[start:i] {
		case "":
			return errors.New("empty segment (//)")
		case ".", "..":
			return errors.New("dot segment")
		}
		if strings.Contains(k[start:i], "..") {
			return errors.New("key holds two dots in a row")
		}
		start = i + 1
	}
	return nil
}
