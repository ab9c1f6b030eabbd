package auth

import (
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/upbroker/upbroker/config"
)

// Modes are the accepted values of auth.mode.
const (
	ModeNone    = "none"
	ModeAPIKey  = "api_key"
	ModeJWT     = "jwt"
	ModeForward = "forward"
)

// New builds the Authenticator of auth.mode. It checks the settings it
// uses itself, so that a bad config fails here with the field's full name
// even when config validation let it through.
func New(cfg config.Auth, logger *slog.Logger) (Authenticator, error) {
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("component", "auth")
	switch cfg.Mode {
	case ModeNone:
		logger.Warn("auth.mode is none: anyone who reaches the broker may upload")
		return None{}, nil
	case ModeAPIKey:
		return newAPIKeys(cfg.APIKeys)
	case ModeJWT:
		return newJWT(cfg.JWT, logger)
	case ModeForward:
		return newForward(cfg.Forward, logger)
	case "":
		// Anonymous access must be a decision, never a default.
		return nil, fmt.Errorf("auth.mode: required: one of none, api_key, jwt, forward")
	default:
		return nil, fmt.Errorf("auth.mode: %q is not one of none, api_key, jwt, forward", cfg.Mode)
	}
}

// CheckListen refuses mode none on an address reachable from other hosts,
// unless auth.allow_anonymous says that is meant. addr is server.addr
// ("host:port"); an empty host or 0.0.0.0 listens everywhere.
func CheckListen(cfg config.Auth, addr string) error {
	if cfg.Mode != ModeNone || cfg.AllowAnonymous {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("server.addr: %w", err)
	}
	if isLoopbackHost(strings.Trim(host, "[]")) {
		return nil
	}
	return fmt.Errorf("auth.mode: none on %s would let anyone upload: listen on 127.0.0.1, choose another auth.mode, or set auth.allow_anonymous: true", addr)
}
