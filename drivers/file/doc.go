// Package file is the `file` driver: a local folder that plays the object
// store, for development and single-machine setups.
//
// Objects are kept with gocloud.dev/blob/fileblob. Its signed URLs point back
// at the broker (server.public_url + /v1/blob/<backend>/<key>), where Handler
// serves them: the broker itself enforces, before a single byte is kept,
// everything that S3 would enforce with its signature (method, expiry,
// Content-Type, exact size, SHA-256, no overwrite, signed metadata).
//
// Settings:
//
//	backends:
//	  local: {driver: file, path: ./data}
//
// `path` is required; the folder is created when missing.
package file
