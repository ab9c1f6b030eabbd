// Package version holds the build's version, stamped in with -ldflags.
package version

// Version is set with -X github.com/upbroker/upbroker/internal/version.Version=...
var Version = "dev"
