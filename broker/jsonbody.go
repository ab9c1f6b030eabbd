package broker

import (
	"bytes"
	"errors"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// maxJSONDepth bounds nesting: no request of the API needs more than 3.
const maxJSONDepth = 8

// jsonContentType is what gin's c.JSON sends. Like gin, every response
// shares the one slice: nothing modifies a header's values in place.
var jsonContentType = []string{"application/json; charset=utf-8"}

// writeJSONBytes sends an encoded JSON body as c.JSON would, without the
// allocations of c.Data (a fresh Content-Type slice and a Content-Length
// that net/http works out anyway).
func writeJSONBytes(c *gin.Context, status int, body []byte) {
	c.Status(status)
	c.Writer.Header()["Content-Type"] = jsonContentType
	if _, err := c.Writer.Write(body); err != nil {
		_ = c.Error(err)
		c.Abort()
	}
}

// jsonBufs holds scratch buffers for hand-written responses.
var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// appendJSONString appends s quoted as encoding/json does by default:
// <, > and & escaped for HTML, invalid UTF-8 replaced with U+FFFD, and
// U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonSafe are the ASCII bytes encoding/json copies as they are (its
// htmlSafeSet).
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONMap appends a string map with its keys sorted, as
// encoding/json does; nil is null.
func appendJSONMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var stack [32]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds as needed).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// readJSON reads a capped body and decodes it strictly into v: one JSON
// object, no duplicate names at any depth, no unknown fields, nesting of
// at most 8, nothing after the value. emptyOK lets an empty body mean {}.
func readJSON(c *gin.Context, v any, emptyOK bool) *apiError {
	buf, e := readBody(c, emptyOK)
	if e != nil || buf == nil {
		return e
	}
	defer bodyBufs.Put(buf)
	return decodeJSON(buf.Bytes(), v)
}

// readBody reads a capped JSON body into a pooled buffer, which the caller
// puts back in bodyBufs when done; the decoders copy every string they
// keep, so nothing refers to the buffer afterwards. An empty body gives a
// nil buffer when emptyOK, and an error otherwise.
func readBody(c *gin.Context, emptyOK bool) (*bytes.Buffer, *apiError) {
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	if _, err := buf.ReadFrom(c.Request.Body); err != nil {
		bodyBufs.Put(buf)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errTooLarge("", "request body exceeds 64 KiB")
		}
		return nil, badRequest("", "could not read the request body")
	}
	if len(bytes.TrimSpace(buf.Bytes())) == 0 {
		bodyBufs.Put(buf)
		if emptyOK {
			return nil, nil
		}
		return nil, badRequest("", "the request body must be a JSON object")
	}
	// A browser form can post text/plain without a CORS preflight; insisting
	// on JSON keeps cookie-authenticated callers safe from cross-site posts.
	if !isJSONType(c.GetHeader("Content-Type")) {
		bodyBufs.Put(buf)
		return nil, &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_type", Message: "the request body must be sent as Content-Type: application/json"}
	}
	return buf, nil
}

var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// isJSONType tells whether a Content-Type header names JSON (application/json
// or any +json type, with any parameters).
func isJSONType(h string) bool {
	// What nearly every client sends; ParseMediaType would build a map.
	if h == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(h)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

func decodeJSON(body []byte, v any) *apiError {
	if err := checkDepth(body); err != nil {
		return err
	}
	// json v2 refuses duplicate names, invalid UTF-8 and trailing data by
	// default; unknown fields are refused so typos do not pass silently.
	err := json.Unmarshal(body, v, json.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	var se *json.SemanticError
	if errors.As(err, &se) {
		field := pointerField(se.JSONPointer)
		if errors.Is(err, json.ErrUnknownName) {
			return badRequest(field, "unknown field %q", field)
		}
		want := "a value of another type"
		if se.GoType != nil {
			want = kindName(se.GoType)
		}
		return badRequest(field, "%s must be %s", orBody(field), want)
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		field := pointerField(syn.JSONPointer)
		if errors.Is(err, jsontext.ErrDuplicateName) {
			return badRequest(field, "duplicate field %q", field)
		}
		return badRequest(field, "malformed JSON at byte %d", syn.ByteOffset)
	}
	return badRequest("", "malformed JSON")
}

func orBody(field string) string {
	if field == "" {
		return "the request body"
	}
	return field
}

func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a value of another type"
}

// pointerField turns "/metadata/album" into "metadata.album".
func pointerField(p jsontext.Pointer) string {
	s := strings.TrimPrefix(string(p), "/")
	s = strings.ReplaceAll(s, "/", ".")
	s = strings.ReplaceAll(s, "~1", "/")
	return strings.ReplaceAll(s, "~0", "~")
}

// checkDepth refuses nesting deeper than maxJSONDepth before any decoder
// recurses into it.
func checkDepth(b []byte) *apiError {
	depth, inStr, esc := 0, false, false
	for _, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			depth++
			if depth > maxJSONDepth {
				return badRequest("", "JSON nested deeper than %d levels", maxJSONDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}
