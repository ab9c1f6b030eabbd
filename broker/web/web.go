// Package web holds the browser side of upbroker, embedded in the binary:
// the demo page and upbroker.js, the dependency-free client.
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var static embed.FS

// Assets is the static folder: index.html (the demo page), upbroker.js
// (served at /v1/client.js), upbroker.d.ts (at /v1/client.d.ts), and the
// demo page's own files (served under /demo/).
var Assets, _ = fs.Sub(static, "static")
