package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Limits that no config may pass.
const (
	MaxObjectSize    = 5 * TiB // the largest object S3 and GCS accept
	MaxExpires       = 7 * 24 * time.Hour
	MinPartSize      = 5 * MiB // S3's minimum for every part but the last
	MaxPartSize      = 5 * GiB
	MaxSinglePut     = 5 * GiB // S3's largest single PUT
	MinTicketKeySize = 32
)

// Accepted values of the enumerated settings.
var (
	AuthModes     = []string{"none", "api_key", "jwt", "forward"}
	WebhookEvents = []string{"upload.completed", "upload.rejected", "upload.aborted"}
	// KeyPlaceholders are the names a profile's key template may use.
	KeyPlaceholders = []string{"profile", "principal", "uuid", "ext", "date"}
)

var (
	nameRe    = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	apiNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	hexRe     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// token is RFC 9110's tchar, lower-case only: types are compared as
	// written, so a mixed-case entry would never match.
	tokenRe       = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9a-z-]+$")
	placeholderRe = regexp.MustCompile(`\{([^{}]*)\}`)
	keyLiteralRe  = regexp.MustCompile(`^[A-Za-z0-9._/-]*$`)
)

func (c *Config) validate(opts LoadOptions, errs *Errors) {
	c.validateServer(errs)
	c.validateSecrets(errs)
	c.validateAuth(errs)
	c.validateBackends(opts, errs)
	c.validateProfiles(errs)
	c.validateRateLimit(errs)
	c.validateWebhooks(errs)
	c.validateCompat(errs)
}

func (c *Config) validateServer(errs *Errors) {
	s := c.Server
	if _, port, err := net.SplitHostPort(s.Addr); err != nil {
		errs.add("server.addr", "%q is not host:port (for example 127.0.0.1:8080 or :8080)", s.Addr)
	} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		errs.add("server.addr", "port %q is not a number from 1 to 65535", port)
	}
	if s.PublicURL != "" {
		if err := httpURL(s.PublicURL); err != nil {
			errs.add("server.public_url", "%v", err)
		}
	}
	for i, o := range s.CORS.AllowedOrigins {
		if o == "*" {
			if s.CORS.AllowCredentials {
				errs.add(index("server.cors.allowed_origins", i), `"*" cannot be combined with allow_credentials: true; list the origins instead`)
			}
			continue
		}
		if err := origin(o); err != nil {
			errs.add(index("server.cors.allowed_origins", i), "%v", err)
		}
	}
	for i, p := range s.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			errs.add(index("server.trusted_proxies", i), "%q is neither an IP address nor a CIDR such as 10.0.0.0/8", p)
		}
	}
	if s.ReadHeaderTimeout <= 0 {
		errs.add("server.read_header_timeout", "must be above 0: without it a client can hold a connection open by sending headers slowly")
	}
	if s.ShutdownTimeout <= 0 {
		errs.add("server.shutdown_timeout", "must be above 0")
	}
	if s.DrainDelay < 0 || s.DrainDelay > 5*time.Minute {
		errs.add("server.drain_delay", "must be from 0s to 5m, got %s", s.DrainDelay)
	}
	if s.MaxHeaderBytes < 4<<10 || s.MaxHeaderBytes > 1<<20 {
		errs.add("server.max_header_bytes", "must be from 4KiB to 1MiB, got %d", s.MaxHeaderBytes)
	}
	if s.CompleteGrace > MaxExpires {
		errs.add("server.complete_grace", "at most 7d, got %s", FormatDuration(s.CompleteGrace))
	}
}

func (c *Config) validateSecrets(errs *Errors) {
	for i, k := range c.Secrets.TicketKeys {
		// Never print the key, only its length.
		if len(k) < MinTicketKeySize {
			errs.add(index("secrets.ticket_keys", i), "a ticket key must be at least %d bytes, this one has %d (make one with `openssl rand -base64 48`)", MinTicketKeySize, len(k))
		}
	}
	if len(c.Secrets.TicketKeys) == 0 && c.Server.Addr != "" && !IsLoopback(c.Server.Addr) {
		errs.add("secrets.ticket_keys", "required when server.addr is not a loopback address: set secrets.ticket_keys, or the %s environment variable, to a random string of at least %d bytes (`openssl rand -base64 48`)", TicketKeyEnv, MinTicketKeySize)
	}
}

func (c *Config) validateAuth(errs *Errors) {
	a := c.Auth
	switch a.Mode {
	case "":
		errs.add("auth.mode", "required: choose api_key, jwt or forward; to let anyone upload without credentials, write `mode: none` explicitly")
	case "none":
		if !IsLoopback(c.Server.Addr) && !a.AllowAnonymous {
			errs.add("auth.mode", "mode none on a non-loopback address (%s) lets anyone on the network upload; set auth.allow_anonymous: true if that is intended", c.Server.Addr)
		}
	case "api_key":
		if len(a.APIKeys) == 0 {
			errs.add("auth.api_keys", "mode api_key needs at least one key (make one with `upbroker apikey new`)")
		}
	case "jwt":
		set := 0
		for _, s := range []string{a.JWT.HS256Secret, a.JWT.PublicKeyFile, a.JWT.JWKSURL} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			errs.add("auth.jwt", "mode jwt needs exactly one of hs256_secret, public_key_file or jwks_url (found %d)", set)
		}
	case "forward":
		if a.Forward.URL == "" {
			errs.add("auth.forward.url", "required in mode forward")
		}
	default:
		errs.add("auth.mode", "unknown mode %q (one of %s)%s", a.Mode, strings.Join(AuthModes, ", "), suggest(a.Mode, AuthModes))
	}
	seen := map[string]int{}
	for i, k := range a.APIKeys {
		p := index("auth.api_keys", i)
		if !apiNameRe.MatchString(k.Name) {
			errs.add(p+".name", "%q must be 1 to 64 of A-Z a-z 0-9 . _ - (it becomes the principal)", k.Name)
		} else if j, dup := seen[k.Name]; dup {
			errs.add(p+".name", "%q is also the name of auth.api_keys[%d]", k.Name, j)
		} else {
			seen[k.Name] = i
		}
		if !hexRe.MatchString(k.SHA256) {
			errs.add(p+".sha256", "must be the 64 lower-case hex digits of the key's SHA-256 (from `upbroker apikey new`), not the key itself")
		}
		for j, prof := range k.Profiles {
			if _, ok := c.Profiles[prof]; !ok {
				errs.add(index(p+".profiles", j), "no profile named %q%s", prof, suggest(prof, c.profileNames()))
			}
		}
	}
	if a.JWT.JWKSURL != "" {
		if err := httpURL(a.JWT.JWKSURL); err != nil {
			errs.add("auth.jwt.jwks_url", "%v", err)
		}
	}
	if a.JWT.HS256Secret != "" && len(a.JWT.HS256Secret) < 32 {
		errs.add("auth.jwt.hs256_secret", "must be at least 32 bytes, this one has %d", len(a.JWT.HS256Secret))
	}
	if a.Mode == "jwt" && a.JWT.JWKSURL != "" && (a.JWT.JWKSRefresh <= 0 || a.JWT.JWKSTimeout <= 0) {
		errs.add("auth.jwt", "jwks_refresh and jwks_timeout must be above 0")
	}
	if a.Forward.URL != "" {
		if err := httpURL(a.Forward.URL); err != nil {
			errs.add("auth.forward.url", "%v", err)
		}
	}
	if a.Mode == "forward" && a.Forward.Timeout <= 0 {
		errs.add("auth.forward.timeout", "must be above 0")
	}
}

func (c *Config) validateBackends(opts LoadOptions, errs *Errors) {
	if len(c.Backends) == 0 {
		errs.add("backends", "at least one backend is required, for example `local: {driver: file, path: ./data}`")
	}
	for _, name := range sortedNames(c.Backends) {
		b := c.Backends[name]
		p := join("backends", name)
		if !nameRe.MatchString(name) {
			errs.add(p, "a backend name must be 1 to 64 of a-z 0-9 _ -, starting with a letter or digit")
		}
		if b.Driver == "" {
			errs.add(p+".driver", "required (one of %s)", strings.Join(opts.Drivers, ", "))
			continue
		}
		if opts.BackendSpec == nil {
			continue
		}
		keys, required, _, ok := opts.BackendSpec(b.Driver)
		if !ok {
			errs.add(p+".driver", "unknown driver %q (known: %s)%s", b.Driver, strings.Join(opts.Drivers, ", "), suggest(b.Driver, opts.Drivers))
			continue
		}
		known := map[string]bool{}
		for _, k := range keys {
			known[k] = true
		}
		for _, k := range sortedNames(b.Settings) {
			if !known[k] {
				errs.add(join(p, k), "unknown setting for driver %s%s", b.Driver, suggest(k, keys))
			}
		}
		for _, k := range required {
			if b.Settings[k] == "" {
				errs.add(join(p, k), "required by driver %s", b.Driver)
			}
		}
	}
}

func (c *Config) validateProfiles(errs *Errors) {
	if len(c.Profiles) == 0 {
		errs.add("profiles", "at least one profile is required")
	}
	for _, name := range sortedNames(c.Profiles) {
		pr := c.Profiles[name]
		p := join("profiles", name)
		if !nameRe.MatchString(name) {
			errs.add(p, "a profile name must be 1 to 64 of a-z 0-9 _ -, starting with a letter or digit")
		}
		if pr.Backend == "" {
			errs.add(p+".backend", "required: the name of one of the backends")
		} else if _, ok := c.Backends[pr.Backend]; !ok {
			errs.add(p+".backend", "no backend named %q%s", pr.Backend, suggest(pr.Backend, sortedNames(c.Backends)))
		}
		if len(pr.ContentTypes) == 0 {
			errs.add(p+".content_types", "the allow-list is empty: list the types to accept, such as image/png or image/*")
		}
		for i, ct := range pr.ContentTypes {
			if err := mediaRange(ct); err != nil {
				errs.add(index(p+".content_types", i), "%v", err)
			}
		}
		switch {
		case pr.MaxSize <= 0:
			errs.add(p+".max_size", "required and above 0, such as 10MiB")
		case pr.MaxSize > MaxObjectSize:
			errs.add(p+".max_size", "%s is more than the 5TiB any store accepts", pr.MaxSize)
		}
		switch {
		case pr.Expires <= 0:
			errs.add(p+".expires", "must be above 0, such as 15m")
		case pr.Expires > MaxExpires:
			errs.add(p+".expires", "%s is more than the 7d a signed URL may live", FormatDuration(pr.Expires))
		}
		switch {
		case pr.PartSize < MinPartSize:
			errs.add(p+".part_size", "%s is below the 5MiB minimum of S3-style multipart uploads", pr.PartSize)
		case pr.PartSize > MaxPartSize:
			errs.add(p+".part_size", "%s is above the 5GiB maximum of a part", pr.PartSize)
		}
		switch {
		case pr.MultipartThreshold < pr.PartSize:
			errs.add(p+".multipart_threshold", "%s is below part_size (%s): a file that small would be split into a single part", pr.MultipartThreshold, pr.PartSize)
		case pr.MultipartThreshold > MaxSinglePut:
			errs.add(p+".multipart_threshold", "%s is above 5GiB, the largest single PUT", pr.MultipartThreshold)
		}
		if pr.Method != "put" && pr.Method != "post" {
			errs.add(p+".method", "%q is neither put nor post", pr.Method)
		}
		if err := keyTemplate(pr.Key); err != nil {
			errs.add(p+".key", "%v", err)
		}
		if pr.PublicBaseURL != "" {
			if err := httpURL(pr.PublicBaseURL); err != nil {
				errs.add(p+".public_base_url", "%v", err)
			}
		}
	}
	if c.DefaultProfile != "" {
		if _, ok := c.Profiles[c.DefaultProfile]; !ok {
			errs.add("default_profile", "no profile named %q%s", c.DefaultProfile, suggest(c.DefaultProfile, c.profileNames()))
		}
	}
}

func (c *Config) validateRateLimit(errs *Errors) {
	r := c.RateLimit
	switch r.Store {
	case "memory":
	case "redis":
		if r.RedisURL == "" {
			errs.add("rate_limit.redis_url", "required with store redis, such as redis://127.0.0.1:6379/0")
		}
	default:
		errs.add("rate_limit.store", "%q is neither memory nor redis", r.Store)
	}
	if r.RedisURL != "" {
		u, err := url.Parse(r.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			// url.Parse's error would echo the URL and its password.
			errs.add("rate_limit.redis_url", "not a redis://, rediss:// or unix:// URL")
		}
	}
	if r.RedisURL != "" && r.Store != "redis" {
		errs.add("rate_limit.redis_url", "set, but rate_limit.store is not redis")
	}
	if r.GrantsPerMinute < 0 || r.GrantsPerMinute > 60000 {
		errs.add("rate_limit.grants_per_minute", "must be from 0 (unlimited) to 60000, got %d", r.GrantsPerMinute)
	}
	switch {
	case r.Burst < 0:
		errs.add("rate_limit.burst", "must be 0 or more")
	case r.Burst > 0 && r.GrantsPerMinute == 0:
		errs.add("rate_limit.burst", "set without rate_limit.grants_per_minute")
	}
	if r.OnStoreError != "deny" && r.OnStoreError != "allow" {
		errs.add("rate_limit.on_store_error", "%q is neither deny nor allow", r.OnStoreError)
	}
}

func (c *Config) validateWebhooks(errs *Errors) {
	for i, w := range c.Webhooks {
		p := index("webhooks", i)
		if w.URL == "" {
			errs.add(p+".url", "required")
		} else if err := httpURL(w.URL); err != nil {
			errs.add(p+".url", "%v", err)
		}
		if w.Secret == "" {
			errs.add(p+".secret", "required: receivers check the signature with it")
		}
		if len(w.Events) == 0 {
			errs.add(p+".events", "list at least one of %s", strings.Join(WebhookEvents, ", "))
		}
		for j, e := range w.Events {
			if !contains(WebhookEvents, e) {
				errs.add(index(p+".events", j), "unknown event %q (one of %s)%s", e, strings.Join(WebhookEvents, ", "), suggest(e, WebhookEvents))
			}
		}
	}
}

func (c *Config) validateCompat(errs *Errors) {
	cp := c.Compat.Companion
	if !cp.Enabled {
		return
	}
	if !strings.HasPrefix(cp.Path, "/") || strings.HasSuffix(cp.Path, "/") || len(cp.Path) < 2 {
		errs.add("compat.companion.path", "%q must start with / and not end with one, such as /s3", cp.Path)
	} else if first := strings.SplitN(cp.Path[1:], "/", 2)[0]; contains([]string{"v1", "demo", "healthz", "readyz", "metrics", "openapi.json"}, first) {
		errs.add("compat.companion.path", "%q collides with the broker's own routes", cp.Path)
	}
	if cp.Profile == "" {
		errs.add("compat.companion.profile", "required when companion is enabled and there is no default_profile")
	} else if _, ok := c.Profiles[cp.Profile]; !ok {
		errs.add("compat.companion.profile", "no profile named %q%s", cp.Profile, suggest(cp.Profile, c.profileNames()))
	}
}

// httpURL accepts only an absolute http(s) URL. Its errors never repeat
// the URL, which may carry a password.
func httpURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an absolute http:// or https:// URL")
	}
	return nil
}

// origin accepts scheme://host[:port], the form browsers send in Origin.
func origin(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an origin such as https://app.example.com or http://localhost:3000", s)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q is not an origin: write only scheme://host[:port], no path", s)
	}
	return nil
}

// mediaRange accepts type/subtype or type/*, lower-case.
func mediaRange(s string) error {
	typ, sub, ok := strings.Cut(s, "/")
	switch {
	case !ok || typ == "" || sub == "":
		return fmt.Errorf("%q is not a media type like image/png or image/*", s)
	case s != strings.ToLower(s):
		return fmt.Errorf("%q must be lower-case: write %q", s, strings.ToLower(s))
	case typ == "*":
		return fmt.Errorf("%q would allow every type; list the types to accept", s)
	case !tokenRe.MatchString(typ) || (sub != "*" && !tokenRe.MatchString(sub)) || strings.Contains(typ, "*"):
		return fmt.Errorf("%q is not a media type like image/png or image/* (no parameters, no spaces)", s)
	}
	return nil
}

// keyTemplate checks a profile's object key template: only known
// placeholders, {uuid} so that keys never collide, and literal text that
// cannot form a path escape.
func keyTemplate(t string) error {
	if t == "" {
		return fmt.Errorf("required, such as {profile}/{principal}/{uuid}{ext}")
	}
	hasUUID := false
	for _, m := range placeholderRe.FindAllStringSubmatch(t, -1) {
		if !contains(KeyPlaceholders, m[1]) {
			return fmt.Errorf("unknown placeholder {%s} (known: {%s})", m[1], strings.Join(KeyPlaceholders, "}, {"))
		}
		if m[1] == "uuid" {
			hasUUID = true
		}
	}
	if !hasUUID {
		return fmt.Errorf("must contain {uuid}, so that two uploads never get the same key")
	}
	lit := placeholderRe.ReplaceAllString(t, "x")
	switch {
	case !keyLiteralRe.MatchString(lit):
		return errors.New("only A-Z a-z 0-9 . _ / - and placeholders are allowed")
	case strings.HasPrefix(t, "/"):
		return errors.New("must not start with a slash")
	case strings.Contains(t, "//") || strings.Contains(t, ".."):
		return errors.New("must not contain a double slash or two dots in a row")
	}
	return nil
}

func (c *Config) profileNames() []string { return sortedNames(c.Profiles) }

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
