package drivers

import "errors"

// Drivers wrap these with %w so the broker can map any store's failure to
// one API status without knowing the store.
var (
	// ErrNotFound: no object (or multipart upload) at that key. → 404/409
	ErrNotFound = errors.New("object not found")
	// ErrExists: the object exists and the request would overwrite it. → 409
	ErrExists = errors.New("object already exists")
	// ErrUnavailable: the store could not be reached or failed. → 503
	ErrUnavailable = errors.New("backend unavailable")
	// ErrInvalid: the store refused the request's arguments (a bad part
	// list, a too-small part). → 400/422
	ErrInvalid = errors.New("invalid request to backend")
	// ErrNotSupported: the driver cannot do this at all. → 400
	ErrNotSupported = errors.New("not supported by this backend")
	// ErrConfig: a backend's settings are wrong; returned by Open.
	ErrConfig = errors.New("invalid backend configuration")
)
