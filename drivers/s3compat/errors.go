package s3compat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	"github.com/upbroker/upbroker/drivers"
)

// StoreError is what a driver knows of one failed call, taken from its
// SDK's error type: the S3 error code and the HTTP status (0 when no
// response came back).
type StoreError struct {
	Code   string
	Status int
}

// MapError wraps err so the broker sees one of the drivers.Err* values,
// with a message naming the operation and the store (endpoint and bucket)
// and never a credential. op is "stat", "delete"...; key may be empty.
func MapError(where, op, key string, se StoreError, err error) error {
	if err == nil {
		return nil
	}
	target := classify(se, err)
	subject := where
	if key != "" {
		subject = fmt.Sprintf("%q at %s", key, where)
	}
	detail := se.Code
	if detail == "" && se.Status != 0 {
		detail = http.StatusText(se.Status)
	}
	switch {
	case target == nil:
		return fmt.Errorf("%s %s: %w", op, subject, err)
	case errors.Is(target, drivers.ErrUnavailable) && se.Status == 0:
		return fmt.Errorf("%w: %s %s: the store did not answer: %w", target, op, subject, err)
	case errors.Is(target, drivers.ErrUnavailable) && (se.Status == http.StatusForbidden || se.Status == http.StatusUnauthorized):
		return fmt.Errorf("%w: %s %s: the store refused the broker's credentials (%s): %w", target, op, subject, detail, err)
	default:
		return fmt.Errorf("%w: %s %s (%s): %w", target, op, subject, detail, err)
	}
}

func classify(se StoreError, err error) error {
	switch se.Code {
	case "NoSuchKey", "NoSuchUpload", "NotFound", "NoSuchVersion":
		return drivers.ErrNotFound
	case "NoSuchBucket":
		// A missing bucket is the backend's configuration, not the
		// client's request: readiness must fail on it.
		return drivers.ErrUnavailable
	case "PreconditionFailed":
		return drivers.ErrExists
	case "InvalidPart", "InvalidPartOrder", "EntityTooSmall", "EntityTooLarge",
		"InvalidArgument", "MalformedXML", "InvalidRequest", "InvalidDigest",
		"BadDigest", "XAmzContentChecksumMismatch", "InvalidRange":
		return drivers.ErrInvalid
	case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout",
		"XMinioServerNotInitialized", "XMinioStorageFull":
		return drivers.ErrUnavailable
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
		"ExpiredToken", "InvalidToken", "AuthorizationHeaderMalformed":
		return drivers.ErrUnavailable
	}
	switch {
	case se.Status == http.StatusNotFound:
		return drivers.ErrNotFound
	case se.Status == http.StatusPreconditionFailed:
		return drivers.ErrExists
	case se.Status == http.StatusUnauthorized, se.Status == http.StatusForbidden:
		return drivers.ErrUnavailable
	case se.Status >= 500:
		return drivers.ErrUnavailable
	case se.Status == http.StatusBadRequest:
		return drivers.ErrInvalid
	case se.Status != 0:
		return nil
	}
	// No answer at all: the network, a timeout, a refused connection.
	if errors.Is(err, context.Canceled) {
		// The caller went away; the store is not to blame.
		return nil
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) {
		return drivers.ErrUnavailable
	}
	// A *url.Error is a transport failure (DNS, TLS, a reset): the store
	// could not be reached.
	var ue *url.Error
	if errors.As(err, &ue) {
		return drivers.ErrUnavailable
	}
	return nil
}
