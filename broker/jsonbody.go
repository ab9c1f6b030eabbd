package broker

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"
	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// maxJSONDepth bounds nesting: no request of the API needs more than 3.
const maxJSONDepth = 8

// readJSON reads a capped body and decodes it strictly into v: one JSON
// object, no duplicate names at any depth, no unknown fields, nesting of
// at most 8, nothing after the value. emptyOK lets an empty body mean {}.
func readJSON(c *gin.Context, v any, emptyOK bool) *apiError {
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge("", "request body exceeds 64 KiB")
		}
		return badRequest("", "could not read the request body")
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if emptyOK {
			return nil
		}
		return badRequest("", "the request body must be a JSON object")
	}
	// A browser form can post text/plain without a CORS preflight; insisting
	// on JSON keeps cookie-authenticated callers safe from cross-site posts.
	if mt, _, err := mime.ParseMediaType(c.GetHeader("Content-Type")); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_type", Message: "the request body must be sent as Content-Type: application/json"}
	}
	return decodeJSON(body, v)
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
