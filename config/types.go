// Package config holds upbroker's configuration: its types, loading from
// YAML with viper (environment overrides, ${VAR} expansion), defaults and
// validation. It imports neither the broker nor the drivers; backend
// settings are checked through a callback that the caller provides.
package config

import "time"

// Size is a byte count, written in YAML as 10MiB, 512KB, 1GiB or 1234.
type Size int64

// Config is the whole file, resolved: defaults applied, ${VAR} expanded.
type Config struct {
	Server         Server             `mapstructure:"server" json:"server"`
	Secrets        Secrets            `mapstructure:"secrets" json:"secrets"`
	Auth           Auth               `mapstructure:"auth" json:"auth"`
	Backends       map[string]Backend `mapstructure:"backends" json:"backends"`
	Profiles       map[string]Profile `mapstructure:"profiles" json:"profiles"`
	DefaultProfile string             `mapstructure:"default_profile" json:"default_profile"`
	RateLimit      RateLimit          `mapstructure:"rate_limit" json:"rate_limit"`
	Webhooks       []Webhook          `mapstructure:"webhooks" json:"webhooks"`
	Compat         Compat             `mapstructure:"compat" json:"compat"`
}

// Server is the HTTP listener and what surrounds it.
type Server struct {
	Addr string `mapstructure:"addr" json:"addr"`
	// PublicURL is how clients reach the broker; file-driver URLs and
	// complete_url are built on it.
	PublicURL string `mapstructure:"public_url" json:"public_url"`
	CORS      CORS   `mapstructure:"cors" json:"cors"`
	// TrustedProxies are the CIDRs whose X-Forwarded-For is believed.
	TrustedProxies    []string      `mapstructure:"trusted_proxies" json:"trusted_proxies"`
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout" json:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout" json:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout" json:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout" json:"idle_timeout"`
	ShutdownTimeout   time.Duration `mapstructure:"shutdown_timeout" json:"shutdown_timeout"`
	// DrainDelay is how long, after SIGTERM, the broker keeps serving with
	// /readyz at 503 before it closes its listener, so that load balancers
	// see the 503 and stop sending before connections are refused.
	DrainDelay     time.Duration `mapstructure:"drain_delay" json:"drain_delay"`
	MaxHeaderBytes int           `mapstructure:"max_header_bytes" json:"max_header_bytes"`
	// DemoPage serves the demo page at / when true.
	DemoPage bool `mapstructure:"demo_page" json:"demo_page"`
	// CompleteGrace is how long after a grant expires its ticket may still
	// complete: an upload that starts before expiry may end after it.
	CompleteGrace time.Duration `mapstructure:"complete_grace" json:"complete_grace"`
}

// CORS configures cross-origin access to the API.
type CORS struct {
	AllowedOrigins   []string      `mapstructure:"allowed_origins" json:"allowed_origins"`
	AllowCredentials bool          `mapstructure:"allow_credentials" json:"allow_credentials"`
	MaxAge           time.Duration `mapstructure:"max_age" json:"max_age"`
}

// Secrets are the broker's own keys.
type Secrets struct {
	// TicketKeys sign upload tickets: the first signs, all verify.
	TicketKeys []string `mapstructure:"ticket_keys" json:"ticket_keys"`
}

// Auth decides who may call the API.
type Auth struct {
	// Mode is none, api_key, jwt or forward.
	Mode string `mapstructure:"mode" json:"mode"`
	// AllowAnonymous lets mode none listen on a non-loopback address.
	AllowAnonymous bool     `mapstructure:"allow_anonymous" json:"allow_anonymous"`
	APIKeys        []APIKey `mapstructure:"api_keys" json:"api_keys"`
	JWT            JWT      `mapstructure:"jwt" json:"jwt"`
	Forward        Forward  `mapstructure:"forward" json:"forward"`
}

// APIKey is one accepted key, stored as the hex SHA-256 of the key.
type APIKey struct {
	Name   string `mapstructure:"name" json:"name"`
	SHA256 string `mapstructure:"sha256" json:"sha256"`
	// Profiles limits the key to these profiles; empty means all.
	Profiles []string `mapstructure:"profiles" json:"profiles"`
}

// JWT configures bearer-token auth.
type JWT struct {
	HS256Secret   string        `mapstructure:"hs256_secret" json:"hs256_secret"`
	PublicKeyFile string        `mapstructure:"public_key_file" json:"public_key_file"`
	JWKSURL       string        `mapstructure:"jwks_url" json:"jwks_url"`
	Issuer        string        `mapstructure:"issuer" json:"issuer"`
	Audience      string        `mapstructure:"audience" json:"audience"`
	ProfilesClaim string        `mapstructure:"profiles_claim" json:"profiles_claim"`
	Leeway        time.Duration `mapstructure:"leeway" json:"leeway"`
	JWKSRefresh   time.Duration `mapstructure:"jwks_refresh" json:"jwks_refresh"`
	JWKSTimeout   time.Duration `mapstructure:"jwks_timeout" json:"jwks_timeout"`
}

// Forward asks the application itself who the caller is.
type Forward struct {
	URL      string        `mapstructure:"url" json:"url"`
	Timeout  time.Duration `mapstructure:"timeout" json:"timeout"`
	CacheTTL time.Duration `mapstructure:"cache_ttl" json:"cache_ttl"`
}

// Backend is one store: a driver name and its settings (the other keys of
// the block, kept as strings and checked against the driver's spec).
type Backend struct {
	Driver   string            `json:"driver"`
	Settings map[string]string `json:"settings"`
}

// Profile is a kind of upload (images, documents, ...) and its policy.
type Profile struct {
	Backend      string   `mapstructure:"backend" json:"backend"`
	ContentTypes []string `mapstructure:"content_types" json:"content_types"`
	MaxSize      Size     `mapstructure:"max_size" json:"max_size"`
	// Key is the object key template: {principal} {uuid} {ext} {date} {profile}.
	Key     string        `mapstructure:"key" json:"key"`
	Expires time.Duration `mapstructure:"expires" json:"expires"`
	Sniff   bool          `mapstructure:"sniff" json:"sniff"`
	// Method is put or post (a browser form with a POST policy).
	Method             string `mapstructure:"method" json:"method"`
	MultipartThreshold Size   `mapstructure:"multipart_threshold" json:"multipart_threshold"`
	PartSize           Size   `mapstructure:"part_size" json:"part_size"`
	PublicRead         bool   `mapstructure:"public_read" json:"public_read"`
	PublicBaseURL      string `mapstructure:"public_base_url" json:"public_base_url"`
}

// RateLimit bounds how much each principal may ask for.
type RateLimit struct {
	// Store is memory or redis.
	Store           string `mapstructure:"store" json:"store"`
	RedisURL        string `mapstructure:"redis_url" json:"redis_url"`
	GrantsPerMinute int    `mapstructure:"grants_per_minute" json:"grants_per_minute"`
	Burst           int    `mapstructure:"burst" json:"burst"`
	BytesPerDay     Size   `mapstructure:"bytes_per_day" json:"bytes_per_day"`
	// OnStoreError is deny or allow: what to do when Redis fails.
	OnStoreError string `mapstructure:"on_store_error" json:"on_store_error"`
}

// Webhook is one receiver of upload events.
type Webhook struct {
	URL    string   `mapstructure:"url" json:"url"`
	Secret string   `mapstructure:"secret" json:"secret"`
	Events []string `mapstructure:"events" json:"events"`
}

// Compat holds compatibility layers for other tools' clients.
type Compat struct {
	Companion Companion `mapstructure:"companion" json:"companion"`
}

// Companion serves Uppy Companion's S3 signing endpoints.
type Companion struct {
	Enabled bool   `mapstructure:"enabled" json:"enabled"`
	Path    string `mapstructure:"path" json:"path"`
	Profile string `mapstructure:"profile" json:"profile"`
}
