// Package drivers holds the contract between the broker and the object
// stores: the Driver interface, what a store's signature can enforce, the
// shapes of grants and objects, the shared errors, and a registry of driver
// factories keyed by name.
//
// The broker knows stores only through this package. A driver never imports
// the broker. Adding a backend means one folder under drivers/ that calls
// Register, and one import line in drivers/all.
package drivers

import (
	"context"
	"net/http"
	"time"
)

// Driver is one configured backend: a bucket, a container or a folder.
// Every method that may reach the network takes a context.
type Driver interface {
	// Capabilities says what the store's own signature enforces. It must
	// not change after Open.
	Capabilities() Capabilities

	// PresignPut signs a single-request upload of exactly c.Size bytes of
	// c.ContentType to key. It makes no network call.
	PresignPut(ctx context.Context, key string, c Constraints) (Grant, error)

	// PresignGet signs a download of key.
	PresignGet(ctx context.Context, key string, o GetOptions) (Grant, error)

	// Stat describes the object at key, or returns an error wrapping
	// ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)

	// ReadRange reads at most n bytes from offset off; used to sniff
	// content. A short object yields fewer bytes, not an error.
	ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error)

	// Delete removes key. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error

	// Ping checks that the store answers and the bucket exists (readiness).
	Ping(ctx context.Context) error

	// Close releases clients and connections.
	Close() error
}

// Multipart is implemented by drivers whose store can assemble one object
// from separately uploaded parts. Discover it with a type assertion.
type Multipart interface {
	// CreateMultipart starts an upload; c carries the content type and
	// metadata that the final object gets.
	CreateMultipart(ctx context.Context, key string, c Constraints) (uploadID string, err error)
	// PresignPart signs the upload of one part. size > 0 pins the part's
	// exact length into the signature; size == 0 leaves it open (the
	// broker then checks the total before completing).
	PresignPart(ctx context.Context, key, uploadID string, part int, size int64, expires time.Duration) (Grant, error)
	// ListParts lists what the store holds for an upload, by part number.
	ListParts(ctx context.Context, key, uploadID string) ([]Part, error)
	// CompleteMultipart assembles the parts. ETags may come with or without
	// their surrounding quotes.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) (ObjectInfo, error)
	// AbortMultipart drops an upload and every part of it.
	AbortMultipart(ctx context.Context, key, uploadID string) error
}

// PostPresigner is implemented by drivers that can sign a browser form
// upload (an S3-style POST policy).
type PostPresigner interface {
	// PresignPost signs a multipart/form-data POST of one file to key whose
	// size lies in [0, c.MaxSize] and whose type is c.ContentType.
	PresignPost(ctx context.Context, key string, c Constraints) (Grant, error)
}

// Lister is implemented by drivers that can list objects under a prefix.
// Tests use it to prove that nothing was left behind.
type Lister interface {
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
}

// HTTPServer is implemented by drivers whose signed URLs point back at the
// broker itself (the file driver). The broker mounts the handler at
// /v1/blob/<backend>/ and strips that prefix.
type HTTPServer interface {
	Handler() http.Handler
}

// Enforcement says who guarantees one constraint of an upload.
type Enforcement string

const (
	// BySignature: the store itself rejects a non-conforming upload.
	BySignature Enforcement = "signature"
	// AfterUpload: the store accepts it, and the broker checks the object
	// when the client completes, deleting it if it does not conform.
	AfterUpload Enforcement = "after_upload"
	// NotEnforced: nobody checks it.
	NotEnforced Enforcement = "none"
)

// Enforced tells, per constraint, who enforces it. It is reported to the
// client in every grant.
type Enforced struct {
	Size        Enforcement `json:"size"`
	ContentType Enforcement `json:"content_type"`
	Checksum    Enforcement `json:"checksum"`
	NoOverwrite Enforcement `json:"overwrite"`
}

// Capabilities describes a driver's store.
type Capabilities struct {
	// Put is what a PresignPut grant's signature enforces. A field that is
	// not BySignature is checked after upload by the broker (size, type and
	// checksum) or not at all (overwrite).
	Put Enforced
	// Post is the same for PresignPost grants; zero when PostPolicy is false.
	Post Enforced
	// PostPolicy: the driver implements PostPresigner.
	PostPolicy bool
	// Multipart: the driver implements Multipart.
	Multipart bool
	// MaxSinglePut is the largest object one PUT may carry (0: unlimited).
	MaxSinglePut int64
	// MinPartSize, MaxPartSize and MaxParts bound multipart uploads; every
	// part but the last must be at least MinPartSize.
	MinPartSize int64
	MaxPartSize int64
	MaxParts    int
}

// Constraints are what an upload grant must hold the client to.
type Constraints struct {
	// ContentType is the exact media type the upload must declare.
	ContentType string
	// Size is the exact length of a PUT body, in bytes.
	Size int64
	// MaxSize is the upper bound of a POST policy's content-length-range,
	// and the declared total of a multipart upload.
	MaxSize int64
	// ChecksumSHA256 is the base64 SHA-256 of the body, when the client
	// declared one.
	ChecksumSHA256 string
	// Metadata becomes user metadata on the object. Keys are lower-case
	// [a-z0-9-]; the broker has checked keys and values.
	Metadata map[string]string
	// NoOverwrite asks that an existing object at key is never replaced.
	NoOverwrite bool
	// Expires is how long the grant is valid for.
	Expires time.Duration
}

// GetOptions shape a download grant.
type GetOptions struct {
	Expires time.Duration
	// Filename, when set, is offered to browsers in Content-Disposition.
	Filename string
}

// Grant is what a client needs to perform one request against the store.
type Grant struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	// Headers the client must send exactly (never Content-Length).
	Headers map[string]string `json:"headers"`
	// Fields of a POST form, sent before the file part; nil for PUT.
	Fields map[string]string `json:"fields"`
	// ExpiresAt is the real expiry, after any clamping to credentials.
	ExpiresAt time.Time `json:"-"`
	// Enforced reports who enforces each constraint of this grant.
	Enforced Enforced `json:"-"`
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key         string
	Size        int64
	ContentType string
	// ETag as the store reports it, without surrounding quotes.
	ETag string
	// Metadata with lower-case keys and no store prefix (no x-amz-meta-).
	Metadata map[string]string
	ModTime  time.Time
	// ChecksumSHA256 is the base64 SHA-256 the store verified, when it
	// keeps one; empty otherwise.
	ChecksumSHA256 string
}

// Part is one uploaded part of a multipart upload.
type Part struct {
	Number int    `json:"number"`
	ETag   string `json:"etag"`
	Size   int64  `json:"size,omitempty"`
}
