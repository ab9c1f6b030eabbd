// Package gocloudblob holds what the gcs and azure drivers share over a
// gocloud.dev *blob.Bucket: reading object facts, ranged reads, deletes,
// listing, readiness, and the mapping of gocloud's error codes onto the
// drivers package's errors. Signing stays in each driver, because that is
// where the stores differ.
package gocloudblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/upbroker/upbroker/drivers"
)

// Store wraps a bucket with the drivers' contract for the methods that do
// not sign anything.
type Store struct {
	Bucket *blob.Bucket
	// Name is the bucket or container name, used in error text.
	Name string
}

// Stat describes the object at key.
func (s Store) Stat(ctx context.Context, key string) (drivers.ObjectInfo, error) {
	a, err := s.Bucket.Attributes(ctx, key)
	if err != nil {
		return drivers.ObjectInfo{}, MapError(ctx, "stat", s.Name, key, err)
	}
	md := make(map[string]string, len(a.Metadata))
	for k, v := range a.Metadata {
		// gocloud already strips the store prefix; the contract wants
		// lower-case keys whatever the store returned.
		md[strings.ToLower(k)] = v
	}
	return drivers.ObjectInfo{
		Key:         key,
		Size:        a.Size,
		ContentType: a.ContentType,
		ETag:        strings.Trim(a.ETag, `"`),
		Metadata:    md,
		ModTime:     a.ModTime,
	}, nil
}

// ReadRange reads at most n bytes of key from off. Reading past the end
// yields fewer (or no) bytes rather than an error, as the contract asks.
func (s Store) ReadRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if off < 0 || n < 0 {
		return nil, fmt.Errorf("%w: read range of %q: negative offset or length", drivers.ErrInvalid, key)
	}
	if n == 0 {
		return []byte{}, nil
	}
	r, err := s.Bucket.NewRangeReader(ctx, key, off, n, nil)
	if err != nil {
		mapped := MapError(ctx, "read", s.Name, key, err)
		if off > 0 && !errors.Is(mapped, drivers.ErrNotFound) && !errors.Is(mapped, drivers.ErrUnavailable) {
			// Stores answer 416 for a range that starts past the end;
			// confirm that is what happened before calling it empty.
			if st, serr := s.Stat(ctx, key); serr == nil && off >= st.Size {
				return []byte{}, nil
			}
		}
		return nil, mapped
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, MapError(ctx, "read", s.Name, key, err)
	}
	return b, nil
}

// Delete removes key; a missing object is not an error.
func (s Store) Delete(ctx context.Context, key string) error {
	err := s.Bucket.Delete(ctx, key)
	if err == nil || gcerrors.Code(err) == gcerrors.NotFound {
		return nil
	}
	return MapError(ctx, "delete", s.Name, key, err)
}

// List lists every object under prefix.
func (s Store) List(ctx context.Context, prefix string) ([]drivers.ObjectInfo, error) {
	it := s.Bucket.List(&blob.ListOptions{Prefix: prefix})
	var out []drivers.ObjectInfo
	for {
		o, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, MapError(ctx, "list", s.Name, prefix, err)
		}
		if o.IsDir {
			continue
		}
		out = append(out, drivers.ObjectInfo{Key: o.Key, Size: o.Size, ModTime: o.ModTime})
	}
}

// Ping checks that the store answers and the bucket exists.
func (s Store) Ping(ctx context.Context) error {
	ok, err := s.Bucket.IsAccessible(ctx)
	if err != nil {
		return MapError(ctx, "ping", s.Name, "", err)
	}
	if !ok {
		return fmt.Errorf("%w: bucket %q does not exist or is not accessible", drivers.ErrUnavailable, s.Name)
	}
	return nil
}

// Close closes the bucket.
func (s Store) Close() error { return s.Bucket.Close() }

// MapError wraps a gocloud error with the drivers sentinel that fits, so
// the broker can choose a status without knowing the store. The original
// error stays in the chain for logs.
func MapError(ctx context.Context, op, bucket, key string, err error) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("%s %s/%s", op, bucket, key)
	// A caller that went away is not the store's fault: keep the context
	// error so nobody reports the backend as down for it. A deadline that
	// passed while waiting on the store is the store's slowness, though.
	if errors.Is(ctx.Err(), context.Canceled) && errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", where, err)
	}
	var sentinel error
	switch gcerrors.Code(err) {
	case gcerrors.NotFound:
		sentinel = drivers.ErrNotFound
	case gcerrors.AlreadyExists:
		sentinel = drivers.ErrExists
	case gcerrors.FailedPrecondition:
		// Both stores report a failed if-none-match / generation-match
		// precondition this way; on our paths that only guards overwrite.
		sentinel = drivers.ErrExists
	case gcerrors.InvalidArgument:
		sentinel = drivers.ErrInvalid
	case gcerrors.Unimplemented:
		sentinel = drivers.ErrNotSupported
	default:
		// Unknown, Internal, PermissionDenied, ResourceExhausted,
		// DeadlineExceeded and transport failures: the store cannot do
		// its job right now, which is what readiness and 503 mean.
		sentinel = drivers.ErrUnavailable
	}
	if isNetwork(err) {
		sentinel = drivers.ErrUnavailable
	}
	return fmt.Errorf("%w: %s: %w", sentinel, where, err)
}

func isNetwork(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}
