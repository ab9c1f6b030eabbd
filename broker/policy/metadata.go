package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Metadata limits: small enough for every store's header budget (S3 allows
// 2 KiB of user metadata in all).
const (
	MaxMetadataEntries = 16
	MaxMetadataBytes   = 2048
	// ReservedPrefix begins the keys the broker writes itself.
	ReservedPrefix = "upbroker"
)

// FieldError names the input at fault.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// CheckMetadata enforces the limits on client metadata: at most 16
// entries and 2 KiB of keys and values together; keys of 1-64 bytes of
// [a-z0-9-] that do not begin with "upbroker"; values of printable ASCII
// (no CR, LF or other control bytes, which could split a header).
func CheckMetadata(m map[string]string) error {
	if len(m) > MaxMetadataEntries {
		return &FieldError{"metadata", fmt.Sprintf("at most %d entries, got %d", MaxMetadataEntries, len(m))}
	}
	total := 0
	for k, v := range m {
		total += len(k) + len(v)
		if len(k) == 0 || len(k) > 64 {
			return &FieldError{"metadata", "keys must be 1 to 64 characters"}
		}
		for i := 0; i < len(k); i++ {
			if c := k[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return &FieldError{"metadata", fmt.Sprintf("key %q: only a-z, 0-9 and - are allowed", k)}
			}
		}
		if strings.HasPrefix(k, ReservedPrefix) {
			return &FieldError{"metadata." + k, "keys beginning with " + ReservedPrefix + " are reserved"}
		}
		for i := 0; i < len(v); i++ {
			if c := v[i]; c < 0x20 || c > 0x7e {
				return &FieldError{"metadata." + k, "values must be printable ASCII, without control characters"}
			}
		}
	}
	if total > MaxMetadataBytes {
		return &FieldError{"metadata", fmt.Sprintf("keys and values exceed %d bytes in all", MaxMetadataBytes)}
	}
	return nil
}

// PrincipalTag is how a principal is written into object metadata (the
// reserved upbrokerprincipal key), whose values must be printable ASCII in
// every store: the ID itself when it is printable ASCII of at most 256
// bytes, else "sha256:" and the hex SHA-256 of it. The broker's grants,
// Companion's routes and the ownership check on download all call this
// one function, because a tag written one way and compared another would
// lock owners out of their own objects.
func PrincipalTag(id string) string {
	ok := len(id) > 0 && len(id) <= 256
	for i := 0; ok && i < len(id); i++ {
		ok = id[i] >= 0x21 && id[i] <= 0x7e
	}
	if ok && !strings.HasPrefix(id, "sha256:") {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:])
}
