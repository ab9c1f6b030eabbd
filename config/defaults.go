package config

import (
	"net"
	"strings"

	"github.com/spf13/viper"
)

// Defaults. docs/config.md lists them; keep the two in step.
const (
	DefaultAddr              = "127.0.0.1:8080"
	DefaultReadHeaderTimeout = "10s"
	// Uploads to the file driver stream through the broker, so read and
	// write timeouts must let a large body finish on a slow link: 1 GiB
	// at 2.5 Mbit/s takes about 55 minutes. Slow-header attacks are cut
	// by read_header_timeout, and the idle timeout reaps kept-alive
	// connections, so the long body timeouts cost little.
	DefaultReadTimeout     = "1h"
	DefaultWriteTimeout    = "1h"
	DefaultIdleTimeout     = "120s"
	DefaultMaxHeaderBytes  = 64 << 10
	DefaultShutdownTimeout = "30s"
	// DefaultDrainDelay covers a load balancer's readiness probe period
	// (Kubernetes' default is 10 s with failureThreshold 3; many set 5 s).
	DefaultDrainDelay         = "5s"
	DefaultCompleteGrace      = "1h"
	DefaultCORSMaxAge         = "10m"
	DefaultJWTLeeway          = "30s"
	DefaultJWKSRefresh        = "1h"
	DefaultJWKSTimeout        = "5s"
	DefaultForwardTimeout     = "2s"
	DefaultRateLimitStore     = "memory"
	DefaultOnStoreError       = "deny"
	DefaultCompanionPath      = "/s3"
	DefaultProfileExpires     = "15m"
	DefaultProfileKey         = "{profile}/{principal}/{uuid}{ext}"
	DefaultProfileMethod      = "put"
	DefaultMultipartThreshold = "64MiB"
	DefaultPartSize           = "16MiB"
)

// setDefaults registers defaults with viper, below the file and the
// environment. Profile defaults are set per profile the file names, since
// viper has no notion of "every entry of this map".
func setDefaults(v *viper.Viper, file map[string]any) {
	for k, val := range map[string]any{
		"server.addr":                DefaultAddr,
		"server.read_header_timeout": DefaultReadHeaderTimeout,
		"server.read_timeout":        DefaultReadTimeout,
		"server.write_timeout":       DefaultWriteTimeout,
		"server.idle_timeout":        DefaultIdleTimeout,
		"server.max_header_bytes":    DefaultMaxHeaderBytes,
		"server.shutdown_timeout":    DefaultShutdownTimeout,
		"server.drain_delay":         DefaultDrainDelay,
		"server.complete_grace":      DefaultCompleteGrace,
		"server.demo_page":           true,
		"server.cors.max_age":        DefaultCORSMaxAge,
		"auth.jwt.leeway":            DefaultJWTLeeway,
		"auth.jwt.jwks_refresh":      DefaultJWKSRefresh,
		"auth.jwt.jwks_timeout":      DefaultJWKSTimeout,
		"auth.forward.timeout":       DefaultForwardTimeout,
		"rate_limit.store":           DefaultRateLimitStore,
		"rate_limit.on_store_error":  DefaultOnStoreError,
		"compat.companion.path":      DefaultCompanionPath,
	} {
		v.SetDefault(k, val)
	}
	for _, p := range names(file, "profiles") {
		base := "profiles." + p + "."
		v.SetDefault(base+"expires", DefaultProfileExpires)
		v.SetDefault(base+"key", DefaultProfileKey)
		v.SetDefault(base+"method", DefaultProfileMethod)
		v.SetDefault(base+"multipart_threshold", DefaultMultipartThreshold)
		v.SetDefault(base+"part_size", DefaultPartSize)
	}
}

// resolve fills the values that depend on others, before validation.
func (c *Config) resolve(opts LoadOptions) {
	if c.Server.PublicURL == "" {
		c.Server.PublicURL = derivePublicURL(c.Server.Addr)
	}
	c.Server.PublicURL = strings.TrimRight(c.Server.PublicURL, "/")
	if c.DefaultProfile == "" && len(c.Profiles) == 1 {
		for name := range c.Profiles {
			c.DefaultProfile = name
		}
	}
	if c.Compat.Companion.Enabled && c.Compat.Companion.Profile == "" {
		c.Compat.Companion.Profile = c.DefaultProfile
	}
	for name, p := range c.Profiles {
		p.Method = strings.ToLower(p.Method)
		c.Profiles[name] = p
	}
	c.Auth.Mode = strings.TrimSpace(c.Auth.Mode)
	if len(nonEmpty(c.Secrets.TicketKeys)) == 0 {
		// ticket_keys: ["${UPBROKER_TICKET_KEY}"] with the variable unset
		// means "no key", not "a key that is empty".
		c.Secrets.TicketKeys = nil
		if k, ok := opts.lookupEnv(TicketKeyEnv); ok && k != "" {
			c.Secrets.TicketKeys = []string{k}
		}
	}
}

// derivePublicURL guesses how clients reach a broker listening on addr.
// A wildcard host cannot be reached as such, so it becomes localhost;
// behind a proxy, set server.public_url instead.
func derivePublicURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// IsLoopback tells whether a listen address only accepts local
// connections: 127.0.0.0/8, ::1 or localhost. An empty host listens on
// every interface, so it is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func nonEmpty(list []string) []string {
	var out []string
	for _, s := range list {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
