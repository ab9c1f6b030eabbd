// Package s3compat holds what the s3 and minio drivers share: their
// settings, the S3 header and metadata names, ETag quoting, the limits of
// the S3 API, expiry clamping and the mapping of store failures to the
// drivers package's errors. It knows no SDK, so both drivers agree on the
// wire without depending on each other's client library.
package s3compat

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/upbroker/upbroker/drivers"
)

// Limits of the S3 API, which MinIO shares.
const (
	MinPartSize  int64 = 5 << 20
	MaxPartSize  int64 = 5 << 30
	MaxParts           = 10000
	MaxSinglePut int64 = 5 << 30
	// MaxExpiry is SigV4's own limit on a presigned URL.
	MaxExpiry = 7 * 24 * time.Hour
	// MinExpiry: SigV4 expresses expiry in whole seconds.
	MinExpiry = time.Second
)

// Header names the drivers sign or read.
const (
	HeaderContentType    = "Content-Type"
	HeaderIfNoneMatch    = "If-None-Match"
	HeaderChecksumSHA256 = "x-amz-checksum-sha256"
	// MetaPrefix starts every user metadata header.
	MetaPrefix = "x-amz-meta-"
)

// Capabilities is what an S3-family store enforces. A PUT signs type,
// length, If-None-Match and the checksum header, and the store checks them
// all. A POST policy bounds length and pins type, but S3's POST has no
// conditional write, and the checksum is checked after upload.
func Capabilities() drivers.Capabilities {
	return drivers.Capabilities{
		Put: drivers.Enforced{
			Size:        drivers.BySignature,
			ContentType: drivers.BySignature,
			Checksum:    drivers.BySignature,
			NoOverwrite: drivers.BySignature,
		},
		Post: drivers.Enforced{
			Size:        drivers.BySignature,
			ContentType: drivers.BySignature,
			Checksum:    drivers.AfterUpload,
			NoOverwrite: drivers.NotEnforced,
		},
		PostPolicy:   true,
		Multipart:    true,
		MaxSinglePut: MaxSinglePut,
		MinPartSize:  MinPartSize,
		MaxPartSize:  MaxPartSize,
		MaxParts:     MaxParts,
	}
}

// PutEnforced is what a PUT grant reports: the store's capabilities, so
// "checksum: signature" means the store checks a declared checksum, and
// "overwrite: signature" that it honours If-None-Match when asked.
func PutEnforced(drivers.Constraints) drivers.Enforced { return Capabilities().Put }

// PostEnforced is the same for a POST policy grant.
func PostEnforced(drivers.Constraints) drivers.Enforced { return Capabilities().Post }

// PutHeaders are the headers a PUT grant signs and the client must send
// exactly. Content-Length is signed too, but every client sets it itself,
// so it is not listed.
func PutHeaders(c drivers.Constraints) map[string]string {
	h := make(map[string]string, 3+len(c.Metadata))
	if c.ContentType != "" {
		h[HeaderContentType] = c.ContentType
	}
	if c.NoOverwrite {
		h[HeaderIfNoneMatch] = "*"
	}
	if c.ChecksumSHA256 != "" {
		h[HeaderChecksumSHA256] = c.ChecksumSHA256
	}
	for k, v := range c.Metadata {
		h[MetaPrefix+k] = v
	}
	return h
}

// MetaKey turns a store's metadata key (with or without the x-amz-meta-
// prefix, in any case) into the lower-case bare key of ObjectInfo.
func MetaKey(k string) string {
	k = strings.ToLower(k)
	return strings.TrimPrefix(k, MetaPrefix)
}

// TrimETag drops the quotes S3 puts around ETags.
func TrimETag(etag string) string {
	return strings.Trim(strings.TrimSpace(etag), `"`)
}

// QuoteETag puts them back, as CompleteMultipartUpload wants them.
func QuoteETag(etag string) string {
	return `"` + TrimETag(etag) + `"`
}

// CheckPut refuses constraints that no S3 PUT can carry, before signing.
func CheckPut(c drivers.Constraints) error {
	if c.Size < 0 {
		return fmt.Errorf("%w: size %d is negative", drivers.ErrInvalid, c.Size)
	}
	if c.Size > MaxSinglePut {
		return fmt.Errorf("%w: size %d is over the %d bytes one S3 PUT may carry; use multipart", drivers.ErrInvalid, c.Size, MaxSinglePut)
	}
	return nil
}

// CheckPart refuses part numbers and sizes outside the S3 limits.
func CheckPart(part int, size int64) error {
	if part < 1 || part > MaxParts {
		return fmt.Errorf("%w: part number %d is outside 1..%d", drivers.ErrInvalid, part, MaxParts)
	}
	if size < 0 || size > MaxPartSize {
		return fmt.Errorf("%w: part size %d is outside 0..%d", drivers.ErrInvalid, size, MaxPartSize)
	}
	return nil
}

// CheckParts refuses a part list that cannot complete an upload: empty,
// out of range, repeated, or without an ETag.
func CheckParts(parts []drivers.Part) error {
	if len(parts) == 0 {
		return fmt.Errorf("%w: no parts to complete", drivers.ErrInvalid)
	}
	seen := make(map[int]bool, len(parts))
	for _, p := range parts {
		if p.Number < 1 || p.Number > MaxParts {
			return fmt.Errorf("%w: part number %d is outside 1..%d", drivers.ErrInvalid, p.Number, MaxParts)
		}
		if seen[p.Number] {
			return fmt.Errorf("%w: part %d listed twice", drivers.ErrInvalid, p.Number)
		}
		seen[p.Number] = true
		if TrimETag(p.ETag) == "" {
			return fmt.Errorf("%w: part %d has no etag", drivers.ErrInvalid, p.Number)
		}
	}
	return nil
}

// Expiry decides how long a grant lives: what was asked for, bounded by
// SigV4's limits and by the credentials' own expiry when they are
// temporary (a URL signed with an STS session dies with the session).
// It returns the duration to sign and the real expiry time.
func Expiry(now time.Time, want time.Duration, credsExpire bool, credsExpiry time.Time) (time.Duration, time.Time, error) {
	if want <= 0 {
		return 0, time.Time{}, fmt.Errorf("%w: expiry %v must be positive", drivers.ErrInvalid, want)
	}
	if want > MaxExpiry {
		want = MaxExpiry
	}
	if credsExpire && !credsExpiry.IsZero() {
		left := credsExpiry.Sub(now)
		if left < MinExpiry {
			return 0, time.Time{}, fmt.Errorf("%w: the backend's temporary credentials expire at %s, too soon to sign a URL", drivers.ErrUnavailable, credsExpiry.UTC().Format(time.RFC3339))
		}
		if left < want {
			want = left
		}
	}
	// SigV4 counts whole seconds; round down so ExpiresAt is never late.
	want = want.Truncate(time.Second)
	if want < MinExpiry {
		want = MinExpiry
	}
	return want, now.Add(want), nil
}

// Settings are the S3-family keys of a backend block, parsed.
type Settings struct {
	Bucket         string
	Region         string
	Endpoint       *url.URL // nil: the SDK's default (AWS)
	PublicEndpoint *url.URL // nil: same as Endpoint
	PathStyle      bool
	AccessKey      string
	SecretKey      string
	SessionToken   string
}

// DefaultRegion is used when a backend names none; MinIO's default too.
const DefaultRegion = "us-east-1"

// Parse reads and checks the settings. Every error wraps
// drivers.ErrConfig and names the key; no secret value is ever quoted.
func Parse(s drivers.Settings) (Settings, error) {
	out := Settings{
		Bucket:       strings.TrimSpace(s["bucket"]),
		Region:       strings.TrimSpace(s["region"]),
		AccessKey:    s["access_key"],
		SecretKey:    s["secret_key"],
		SessionToken: s["session_token"],
	}
	if out.Bucket == "" {
		return out, fmt.Errorf("%w: bucket: required", drivers.ErrConfig)
	}
	if err := checkBucket(out.Bucket); err != nil {
		return out, fmt.Errorf("%w: bucket: %v", drivers.ErrConfig, err)
	}
	if out.Region == "" {
		out.Region = DefaultRegion
	}
	var err error
	if out.Endpoint, err = parseEndpoint(s["endpoint"]); err != nil {
		return out, fmt.Errorf("%w: endpoint: %v", drivers.ErrConfig, err)
	}
	if out.PublicEndpoint, err = parseEndpoint(s["public_endpoint"]); err != nil {
		return out, fmt.Errorf("%w: public_endpoint: %v", drivers.ErrConfig, err)
	}
	if v := strings.TrimSpace(s["path_style"]); v != "" {
		if out.PathStyle, err = strconv.ParseBool(v); err != nil {
			return out, fmt.Errorf("%w: path_style: %q is not a boolean (true or false)", drivers.ErrConfig, v)
		}
	}
	if (out.AccessKey == "") != (out.SecretKey == "") {
		return out, fmt.Errorf("%w: access_key and secret_key: set both or neither (neither uses the default credential chain)", drivers.ErrConfig)
	}
	if out.SessionToken != "" && out.AccessKey == "" {
		return out, fmt.Errorf("%w: session_token: needs access_key and secret_key", drivers.ErrConfig)
	}
	return out, nil
}

// SigningEndpoint is the host clients reach: public_endpoint, else
// endpoint (nil for AWS's own).
func (s Settings) SigningEndpoint() *url.URL {
	if s.PublicEndpoint != nil {
		return s.PublicEndpoint
	}
	return s.Endpoint
}

// Describe names the backend's store in error messages: its endpoint and
// bucket, never a credential.
func (s Settings) Describe() string {
	host := "s3." + s.Region + ".amazonaws.com"
	if s.Endpoint != nil {
		host = s.Endpoint.String()
	}
	return fmt.Sprintf("%s (bucket %q)", host, s.Bucket)
}

func parseEndpoint(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q must start with http:// or https://", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("must not carry credentials; use access_key and secret_key")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q must not have a query or fragment", raw)
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" {
		return nil, fmt.Errorf("%q must not have a path (the bucket is set by `bucket`)", raw)
	}
	u.Path, u.RawPath = "", ""
	return u, nil
}

// checkBucket applies S3's bucket naming rules, so a typo fails at start
// and not on the first upload.
func checkBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("%q must be 3 to 63 characters", b)
	}
	for i, r := range b {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.'
		if !ok {
			return fmt.Errorf("%q may hold only a-z, 0-9, '-' and '.'", b)
		}
		if (i == 0 || i == len(b)-1) && (r == '-' || r == '.') {
			return fmt.Errorf("%q must begin and end with a letter or digit", b)
		}
	}
	return nil
}

// PostFields are the form fields a POST policy grant adds to the SDK's own
// (key, policy, signature...), and the policy conditions that pin them:
// the size range, the exact type and each metadata value. S3 requires
// every form field to be covered by a condition.
func PostFields(key string, c drivers.Constraints) (map[string]string, []any) {
	fields := make(map[string]string, 8+len(c.Metadata))
	conds := []any{
		[]any{"content-length-range", 0, c.MaxSize},
		map[string]string{"key": key},
	}
	if c.ContentType != "" {
		fields[HeaderContentType] = c.ContentType
		conds = append(conds, map[string]string{HeaderContentType: c.ContentType})
	}
	keys := make([]string, 0, len(c.Metadata))
	for k := range c.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fields[MetaPrefix+k] = c.Metadata[k]
		conds = append(conds, map[string]string{MetaPrefix + k: c.Metadata[k]})
	}
	return fields, conds
}

// ContentDisposition offers filename to browsers as an attachment, with
// RFC 2231 encoding when it is not plain ASCII; "" when there is none.
func ContentDisposition(filename string) string {
	if filename == "" {
		return ""
	}
	return drivers.ContentDisposition(filename)
}

// WholeChecksum keeps a store's SHA-256 only when it covers the whole
// object: a multipart object's is a checksum of checksums ("...-3").
func WholeChecksum(sum string) string {
	if strings.Contains(sum, "-") {
		return ""
	}
	return sum
}

// SortedParts returns the parts in number order, as completion needs.
func SortedParts(parts []drivers.Part) []drivers.Part {
	out := append([]drivers.Part(nil), parts...)
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out
}
