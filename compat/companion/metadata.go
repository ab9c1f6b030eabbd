package companion

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/url"
	"strings"

	"github.com/upbroker/upbroker/broker/policy"
)

// metadataFromQuery collects Companion's metadata[k]=v query parameters.
func metadataFromQuery(q url.Values) (map[string]string, *apiError) {
	raw := map[string]string{}
	for name, vals := range q {
		k, ok := strings.CutPrefix(name, "metadata[")
		if !ok {
			continue
		}
		k, ok = strings.CutSuffix(k, "]")
		if !ok {
			return nil, badField("metadata", "parameter %q is not metadata[name]", name)
		}
		if len(vals) != 1 {
			return nil, badField("metadata."+k, "given %d times", len(vals))
		}
		raw[k] = vals[0]
	}
	return normalizeMetadata(raw)
}

// metadataFromJSON reads POST /multipart's metadata object. Uppy sends
// the file's meta as is: strings, but also numbers, booleans or null.
func metadataFromJSON(m map[string]json.RawMessage) (map[string]string, *apiError) {
	raw := make(map[string]string, len(m))
	for k, v := range m {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0 || bytes.Equal(v, []byte("null")):
			continue // unset meta fields (relativePath of a plain file)
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, badField("metadata."+k, "not a valid JSON string")
			}
			raw[k] = s
		case v[0] == '{' || v[0] == '[':
			return nil, badField("metadata."+k, "must be a string, number or boolean")
		default:
			raw[k] = string(v)
		}
	}
	return normalizeMetadata(raw)
}

// normalizeMetadata makes Uppy's meta storable, then applies the broker's
// limits. Keys are lower-cased, as S3 does anyway (Uppy sends
// relativePath). Values that are not printable ASCII (a filename such as
// "café.png" in meta.name) are RFC 2047 encoded, as Companion does, rather
// than refused: they could not travel in an HTTP header as they are.
func normalizeMetadata(raw map[string]string) (map[string]string, *apiError) {
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		lk := strings.ToLower(k)
		if _, dup := out[lk]; dup {
			return nil, badField("metadata."+lk, "given twice (metadata names are case-insensitive)")
		}
		out[lk] = mime.BEncoding.Encode("UTF-8", v)
	}
	if err := policy.CheckMetadata(out); err != nil {
		var fe *policy.FieldError
		if errors.As(err, &fe) {
			return nil, badField(fe.Field, "%s", fe.Msg)
		}
		return nil, badField("metadata", "%v", err)
	}
	return out, nil
}
