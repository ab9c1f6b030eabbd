package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// fakeSpecs stands in for the driver registry, which config may not import.
var fakeSpecs = map[string]struct{ keys, required, secret []string }{
	"file":  {keys: []string{"path"}, required: []string{"path"}},
	"minio": {keys: []string{"bucket", "region", "endpoint", "public_endpoint", "access_key", "secret_key"}, required: []string{"bucket", "endpoint"}, secret: []string{"secret_key"}},
}

func testOptions(env map[string]string) LoadOptions {
	return LoadOptions{
		BackendSpec: func(d string) ([]string, []string, []string, bool) {
			s, ok := fakeSpecs[d]
			return s.keys, s.required, s.secret, ok
		},
		Drivers: []string{"file", "minio"},
		LookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
	}
}

func isSecret(driver, key string) bool {
	for _, k := range fakeSpecs[driver].secret {
		if k == key {
			return true
		}
	}
	return false
}

const baseYAML = `
server:
  addr: 127.0.0.1:8080
auth:
  mode: none
backends:
  local: {driver: file, path: ./data}
profiles:
  images:
    backend: local
    content_types: [image/png, image/*]
    max_size: 10MiB
`

// variant parses baseYAML, sets or deletes keys by dotted path (a nil
// value deletes), and renders it back, so each table row states only what
// it changes.
func variant(t *testing.T, changes map[string]any) []byte {
	t.Helper()
	var root map[string]any
	if err := yaml.Unmarshal([]byte(baseYAML), &root); err != nil {
		t.Fatal(err)
	}
	for path, val := range changes {
		parts := strings.Split(path, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			next, ok := m[p].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[p] = next
			}
			m = next
		}
		if val == nil {
			delete(m, parts[len(parts)-1])
		} else {
			m[parts[len(parts)-1]] = val
		}
	}
	out, err := yaml.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustParse(t *testing.T, data []byte, env map[string]string) *Config {
	t.Helper()
	c, err := Parse(data, testOptions(env))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, data)
	}
	return c
}

func fieldErrors(t *testing.T, err error) Errors {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want config.Errors, got %T %v", err, err)
	}
	return es
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, []byte(baseYAML), nil)
	p := c.Profiles["images"]
	tests := []struct {
		name      string
		got, want any
	}{
		{"public_url", c.Server.PublicURL, "http://127.0.0.1:8080"},
		{"read_header_timeout", c.Server.ReadHeaderTimeout, 10 * time.Second},
		{"read_timeout", c.Server.ReadTimeout, time.Hour},
		{"write_timeout", c.Server.WriteTimeout, time.Hour},
		{"idle_timeout", c.Server.IdleTimeout, 120 * time.Second},
		{"max_header_bytes", c.Server.MaxHeaderBytes, 64 << 10},
		{"shutdown_timeout", c.Server.ShutdownTimeout, 30 * time.Second},
		{"complete_grace", c.Server.CompleteGrace, time.Hour},
		{"demo_page", c.Server.DemoPage, true},
		{"expires", p.Expires, 15 * time.Minute},
		{"key", p.Key, "{profile}/{principal}/{uuid}{ext}"},
		{"method", p.Method, "put"},
		{"multipart_threshold", p.MultipartThreshold, 64 * MiB},
		{"part_size", p.PartSize, 16 * MiB},
		{"max_size", p.MaxSize, 10 * MiB},
		{"rate_limit.store", c.RateLimit.Store, "memory"},
		{"on_store_error", c.RateLimit.OnStoreError, "deny"},
		{"grants_per_minute", c.RateLimit.GrantsPerMinute, 0},
		{"companion.path", c.Compat.Companion.Path, "/s3"},
		{"jwt.leeway", c.Auth.JWT.Leeway, 30 * time.Second},
		{"jwt.jwks_refresh", c.Auth.JWT.JWKSRefresh, time.Hour},
		{"jwt.jwks_timeout", c.Auth.JWT.JWKSTimeout, 5 * time.Second},
		{"forward.timeout", c.Auth.Forward.Timeout, 2 * time.Second},
		{"default_profile (the only one)", c.DefaultProfile, "images"},
		{"backend settings", c.Backends["local"], Backend{Driver: "file", Settings: map[string]string{"path": "./data"}}},
		{"no ticket key", len(c.Secrets.TicketKeys), 0},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	key32 := strings.Repeat("k", 32)
	tests := []struct {
		name    string
		changes map[string]any
		path    string
		msg     string
	}{
		{"mode missing", map[string]any{"auth.mode": nil}, "auth.mode", "mode: none"},
		{"mode unknown", map[string]any{"auth.mode": "apikey"}, "auth.mode", `did you mean "api_key"`},
		{"none on public addr", map[string]any{"server.addr": "0.0.0.0:8080", "secrets.ticket_keys": []any{key32}}, "auth.mode", "allow_anonymous"},
		{"ticket key needed off loopback", map[string]any{"server.addr": ":8080", "auth.allow_anonymous": true}, "secrets.ticket_keys", "UPBROKER_TICKET_KEY"},
		{"ticket key short", map[string]any{"secrets.ticket_keys": []any{"short"}}, "secrets.ticket_keys[0]", "at least 32 bytes"},
		{"addr not host:port", map[string]any{"server.addr": "localhost"}, "server.addr", "host:port"},
		{"addr bad port", map[string]any{"server.addr": "127.0.0.1:99999"}, "server.addr", "port"},
		{"public_url relative", map[string]any{"server.public_url": "/upload"}, "server.public_url", "absolute"},
		{"public_url ftp", map[string]any{"server.public_url": "ftp://x"}, "server.public_url", "http"},
		{"cors star with credentials", map[string]any{"server.cors.allowed_origins": []any{"*"}, "server.cors.allow_credentials": true}, "server.cors.allowed_origins[0]", "allow_credentials"},
		{"cors origin with path", map[string]any{"server.cors.allowed_origins": []any{"https://a.example/app"}}, "server.cors.allowed_origins[0]", "no path"},
		{"cors not origin", map[string]any{"server.cors.allowed_origins": []any{"example.com"}}, "server.cors.allowed_origins[0]", "not an origin"},
		{"trusted proxy", map[string]any{"server.trusted_proxies": []any{"10.0.0.0/8", "proxy.local"}}, "server.trusted_proxies[1]", "CIDR"},
		{"read header timeout zero", map[string]any{"server.read_header_timeout": "0s"}, "server.read_header_timeout", "above 0"},
		{"header bytes absurd", map[string]any{"server.max_header_bytes": "1GiB"}, "server.max_header_bytes", "4KiB to 1MiB"},
		{"duration without unit", map[string]any{"server.idle_timeout": 30}, "server.idle_timeout", "needs a unit"},
		{"duration garbage", map[string]any{"server.idle_timeout": "soon"}, "server.idle_timeout", "not like"},
		{"bool garbage", map[string]any{"server.demo_page": "maybe"}, "server.demo_page", "true or false"},
		{"no backends", map[string]any{"backends": nil}, "backends", "at least one"},
		{"backend no driver", map[string]any{"backends.local": map[string]any{"path": "x"}}, "backends.local.driver", "required"},
		{"backend unknown driver", map[string]any{"backends.local.driver": "fiel"}, "backends.local.driver", "known: file, minio"},
		{"backend unknown setting", map[string]any{"backends.local.pth": "x"}, "backends.local.pth", `did you mean "path"`},
		{"backend missing setting", map[string]any{"backends.local.path": nil}, "backends.local.path", "required by driver file"},
		{"backend bad name", map[string]any{"backends.loc al": map[string]any{"driver": "file", "path": "x"}}, "backends.loc al", "1 to 64"},
		{"backend upper-case name", map[string]any{"backends.Local": map[string]any{"driver": "file", "path": "x"}}, "backends.Local", `write it as "local"`},
		{"dotted name", map[string]any{"profiles": map[string]any{"a.b": map[string]any{}}}, "profiles.a.b", "dot"},
		{"no profiles", map[string]any{"profiles": nil}, "profiles", "at least one"},
		{"profile backend missing", map[string]any{"profiles.images.backend": "s3"}, "profiles.images.backend", `no backend named "s3"`},
		{"profile backend empty", map[string]any{"profiles.images.backend": nil}, "profiles.images.backend", "required"},
		{"content types empty", map[string]any{"profiles.images.content_types": []any{}}, "profiles.images.content_types", "allow-list is empty"},
		{"content type no slash", map[string]any{"profiles.images.content_types": []any{"png"}}, "profiles.images.content_types[0]", "not a media type"},
		{"content type upper", map[string]any{"profiles.images.content_types": []any{"image/PNG"}}, "profiles.images.content_types[0]", "lower-case"},
		{"content type any", map[string]any{"profiles.images.content_types": []any{"*/*"}}, "profiles.images.content_types[0]", "every type"},
		{"content type params", map[string]any{"profiles.images.content_types": []any{"text/plain; charset=utf-8"}}, "profiles.images.content_types[0]", "no parameters"},
		{"max size missing", map[string]any{"profiles.images.max_size": nil}, "profiles.images.max_size", "required"},
		{"max size negative", map[string]any{"profiles.images.max_size": -5}, "profiles.images.max_size", "negative"},
		{"max size negative string", map[string]any{"profiles.images.max_size": "-5MiB"}, "profiles.images.max_size", "negative"},
		{"max size absurd", map[string]any{"profiles.images.max_size": "6TiB"}, "profiles.images.max_size", "5TiB"},
		{"max size garbage", map[string]any{"profiles.images.max_size": "ten megs"}, "profiles.images.max_size", "byte count"},
		{"expires zero", map[string]any{"profiles.images.expires": "0s"}, "profiles.images.expires", "above 0"},
		{"expires over 7d", map[string]any{"profiles.images.expires": "8d"}, "profiles.images.expires", "7d"},
		{"expires negative", map[string]any{"profiles.images.expires": "-5m"}, "profiles.images.expires", "negative"},
		{"part size small", map[string]any{"profiles.images.part_size": "1MiB"}, "profiles.images.part_size", "5MiB"},
		{"part size big", map[string]any{"profiles.images.part_size": "6GiB", "profiles.images.multipart_threshold": "5GiB"}, "profiles.images.part_size", "5GiB"},
		{"threshold below part size", map[string]any{"profiles.images.multipart_threshold": "8MiB"}, "profiles.images.multipart_threshold", "below part_size"},
		{"threshold above single put", map[string]any{"profiles.images.multipart_threshold": "6GiB"}, "profiles.images.multipart_threshold", "5GiB"},
		{"method", map[string]any{"profiles.images.method": "patch"}, "profiles.images.method", "put nor post"},
		{"key unknown placeholder", map[string]any{"profiles.images.key": "{user}/{uuid}"}, "profiles.images.key", "unknown placeholder {user}"},
		{"key without uuid", map[string]any{"profiles.images.key": "{principal}/{ext}"}, "profiles.images.key", "{uuid}"},
		{"key dotdot", map[string]any{"profiles.images.key": "../{uuid}"}, "profiles.images.key", "two dots"},
		{"key leading slash", map[string]any{"profiles.images.key": "/x/{uuid}"}, "profiles.images.key", "start with a slash"},
		{"key bad char", map[string]any{"profiles.images.key": "a b/{uuid}"}, "profiles.images.key", "only"},
		{"public base url", map[string]any{"profiles.images.public_base_url": "cdn.example.com"}, "profiles.images.public_base_url", "absolute"},
		{"profile unknown key", map[string]any{"profiles.images.max_sise": "1MiB"}, "profiles.images.max_sise", `did you mean "max_size"`},
		{"default profile missing", map[string]any{"default_profile": "image"}, "default_profile", `did you mean "images"`},
		{"rate store", map[string]any{"rate_limit.store": "etcd"}, "rate_limit.store", "memory nor redis"},
		{"redis needs url", map[string]any{"rate_limit.store": "redis"}, "rate_limit.redis_url", "required"},
		{"redis url scheme", map[string]any{"rate_limit.store": "redis", "rate_limit.redis_url": "http://x"}, "rate_limit.redis_url", "redis://"},
		{"redis url without redis", map[string]any{"rate_limit.redis_url": "redis://127.0.0.1:6379/0"}, "rate_limit.redis_url", "not redis"},
		{"burst alone", map[string]any{"rate_limit.burst": 5}, "rate_limit.burst", "without"},
		{"grants absurd", map[string]any{"rate_limit.grants_per_minute": 1000000}, "rate_limit.grants_per_minute", "60000"},
		{"on store error", map[string]any{"rate_limit.on_store_error": "panic"}, "rate_limit.on_store_error", "deny nor allow"},
		{"negative grants", map[string]any{"rate_limit.grants_per_minute": -1}, "rate_limit.grants_per_minute", "0"},
		{"grants not a number", map[string]any{"rate_limit.grants_per_minute": "lots"}, "rate_limit.grants_per_minute", "whole number"},
		{"webhook url", map[string]any{"webhooks": []any{map[string]any{"url": "ftp://x", "secret": "s", "events": []any{"upload.completed"}}}}, "webhooks[0].url", "http"},
		{"webhook secret", map[string]any{"webhooks": []any{map[string]any{"url": "https://x", "events": []any{"upload.completed"}}}}, "webhooks[0].secret", "required"},
		{"webhook no events", map[string]any{"webhooks": []any{map[string]any{"url": "https://x", "secret": "s"}}}, "webhooks[0].events", "at least one"},
		{"webhook bad event", map[string]any{"webhooks": []any{map[string]any{"url": "https://x", "secret": "s", "events": []any{"upload.complete"}}}}, "webhooks[0].events[0]", `did you mean "upload.completed"`},
		{"webhook unknown key", map[string]any{"webhooks": []any{map[string]any{"url": "https://x", "secret": "s", "events": []any{"upload.completed"}, "retries": 3}}}, "webhooks[0].retries", "unknown key"},
		{"companion profile", map[string]any{"compat.companion.enabled": true, "compat.companion.profile": "docs"}, "compat.companion.profile", `no profile named "docs"`},
		{"companion path", map[string]any{"compat.companion.enabled": true, "compat.companion.path": "/v1"}, "compat.companion.path", "collides"},
		{"api_key mode without keys", map[string]any{"auth.mode": "api_key"}, "auth.api_keys", "at least one"},
		{"api key bad name", map[string]any{"auth.api_keys": []any{map[string]any{"name": "a b", "sha256": strings.Repeat("a", 64)}}}, "auth.api_keys[0].name", "1 to 64"},
		{"api key duplicate", map[string]any{"auth.api_keys": []any{map[string]any{"name": "web", "sha256": strings.Repeat("a", 64)}, map[string]any{"name": "web", "sha256": strings.Repeat("b", 64)}}}, "auth.api_keys[1].name", "also the name"},
		{"api key digest upper", map[string]any{"auth.api_keys": []any{map[string]any{"name": "web", "sha256": strings.Repeat("A", 64)}}}, "auth.api_keys[0].sha256", "lower-case hex"},
		{"api key digest short", map[string]any{"auth.api_keys": []any{map[string]any{"name": "web", "sha256": "abc"}}}, "auth.api_keys[0].sha256", "64"},
		{"api key profile", map[string]any{"auth.api_keys": []any{map[string]any{"name": "web", "sha256": strings.Repeat("a", 64), "profiles": []any{"imgs"}}}}, "auth.api_keys[0].profiles[0]", "no profile"},
		{"jwt none set", map[string]any{"auth.mode": "jwt"}, "auth.jwt", "exactly one"},
		{"jwt two set", map[string]any{"auth.mode": "jwt", "auth.jwt.hs256_secret": key32, "auth.jwt.jwks_url": "https://x/jwks"}, "auth.jwt", "exactly one"},
		{"jwt short secret", map[string]any{"auth.mode": "jwt", "auth.jwt.hs256_secret": "short"}, "auth.jwt.hs256_secret", "32 bytes"},
		{"forward no url", map[string]any{"auth.mode": "forward"}, "auth.forward.url", "required"},
		{"unknown top-level", map[string]any{"profile": map[string]any{}}, "profile", `did you mean "profiles"`},
		{"unknown server key", map[string]any{"server.raed_timeout": "5s"}, "server.raed_timeout", `did you mean "read_timeout"`},
		{"unknown far key", map[string]any{"server.zzzzzzzz": "5s"}, "server.zzzzzzzz", "unknown key"},
		{"upper-case key", map[string]any{"Server": map[string]any{}}, "Server", `write it as "server"`},
		{"wrong shape", map[string]any{"server": "localhost"}, "server", "expected a mapping"},
		{"list expected", map[string]any{"webhooks": map[string]any{"url": "x"}}, "webhooks", "expected a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := variant(t, tt.changes)
			_, err := Parse(data, testOptions(nil))
			if err == nil {
				t.Fatalf("no error; want %s: %s\n%s", tt.path, tt.msg, data)
			}
			es := fieldErrors(t, err)
			for _, e := range es {
				if e.Path == tt.path && strings.Contains(e.Msg, tt.msg) {
					return
				}
			}
			t.Fatalf("want an error at %s containing %q, got:\n%v", tt.path, tt.msg, err)
		})
	}
}

// Valid variants must load: every rule above has a side that is allowed.
func TestValidVariants(t *testing.T) {
	key32 := strings.Repeat("k", 32)
	tests := []struct {
		name    string
		changes map[string]any
	}{
		{"anonymous on all interfaces, opted in", map[string]any{"server.addr": ":8080", "auth.allow_anonymous": true, "secrets.ticket_keys": []any{key32}}},
		{"localhost", map[string]any{"server.addr": "localhost:8080"}},
		{"ipv6 loopback", map[string]any{"server.addr": "[::1]:8080"}},
		{"cors star without credentials", map[string]any{"server.cors.allowed_origins": []any{"*", "http://localhost:3000"}}},
		{"proxies", map[string]any{"server.trusted_proxies": []any{"10.0.0.0/8", "192.168.1.1", "::1"}}},
		{"expires 7d", map[string]any{"profiles.images.expires": "7d"}},
		{"max size 5TiB", map[string]any{"profiles.images.max_size": "5TiB"}},
		{"method post upper", map[string]any{"profiles.images.method": "POST"}},
		{"key with date", map[string]any{"profiles.images.key": "uploads/{date}/{uuid}{ext}"}},
		{"content type with plus", map[string]any{"profiles.images.content_types": []any{"image/svg+xml", "application/vnd.ms-excel"}}},
		{"jwt hs256", map[string]any{"auth.mode": "jwt", "auth.jwt.hs256_secret": key32}},
		{"forward", map[string]any{"auth.mode": "forward", "auth.forward.url": "http://127.0.0.1:3000/whoami"}},
		{"api key", map[string]any{"auth.mode": "api_key", "auth.api_keys": []any{map[string]any{"name": "web.app_1", "sha256": strings.Repeat("0f", 32), "profiles": []any{"images"}}}}},
		{"redis", map[string]any{"rate_limit.store": "redis", "rate_limit.redis_url": "redis://127.0.0.1:6379/0", "rate_limit.grants_per_minute": 60, "rate_limit.bytes_per_day": "10GiB"}},
		{"companion on default profile", map[string]any{"compat.companion.enabled": true}},
		{"webhook", map[string]any{"webhooks": []any{map[string]any{"url": "https://x.example/hook", "secret": "s", "events": []any{"upload.completed", "upload.aborted"}}}}},
		{"minio backend", map[string]any{"backends.m": map[string]any{"driver": "minio", "bucket": "b", "endpoint": "http://127.0.0.1:9000", "secret_key": "x"}}},
		{"header bytes as size", map[string]any{"server.max_header_bytes": "16KiB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustParse(t, variant(t, tt.changes), nil)
		})
	}
}

func TestAllErrorsCollected(t *testing.T) {
	data := variant(t, map[string]any{
		"server.addr":                   "nope",
		"profiles.images.max_size":      "-1",
		"profiles.images.content_types": []any{},
		"profiles.images.expires":       "30d",
		"rate_limit.store":              "etcd",
		"bogus":                         1,
	})
	_, err := Parse(data, testOptions(nil))
	es := fieldErrors(t, err)
	want := []string{"bogus", "profiles.images.content_types", "profiles.images.expires", "profiles.images.max_size", "rate_limit.store", "server.addr"}
	for _, p := range want {
		found := false
		for _, e := range es {
			found = found || e.Path == p
		}
		if !found {
			t.Errorf("no error at %s in:\n%v", p, err)
		}
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(es) {
		t.Errorf("Error() has %d lines for %d errors", len(lines), len(es))
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, es[i].Path+": ") {
			t.Errorf("line %q does not start with its path %s", l, es[i].Path)
		}
	}
}

func TestEnvOverride(t *testing.T) {
	data := variant(t, map[string]any{
		"backends.m": map[string]any{"driver": "minio", "bucket": "b", "endpoint": "http://127.0.0.1:9000"},
	})
	tests := []struct {
		env  string
		val  string
		get  func(*Config) any
		want any
	}{
		{"UPBROKER_SERVER_ADDR", "127.0.0.1:9191", func(c *Config) any { return c.Server.Addr }, "127.0.0.1:9191"},
		{"UPBROKER_SERVER_ADDR", "127.0.0.1:9191", func(c *Config) any { return c.Server.PublicURL }, "http://127.0.0.1:9191"},
		{"UPBROKER_PROFILES_IMAGES_MAX_SIZE", "20MiB", func(c *Config) any { return c.Profiles["images"].MaxSize }, 20 * MiB},
		{"UPBROKER_PROFILES_IMAGES_EXPIRES", "2d", func(c *Config) any { return c.Profiles["images"].Expires }, 48 * time.Hour},
		{"UPBROKER_PROFILES_IMAGES_SNIFF", "true", func(c *Config) any { return c.Profiles["images"].Sniff }, true},
		{"UPBROKER_PROFILES_IMAGES_CONTENT_TYPES", "image/png, image/gif", func(c *Config) any { return c.Profiles["images"].ContentTypes }, []string{"image/png", "image/gif"}},
		{"UPBROKER_SERVER_DEMO_PAGE", "false", func(c *Config) any { return c.Server.DemoPage }, false},
		{"UPBROKER_RATE_LIMIT_GRANTS_PER_MINUTE", "60", func(c *Config) any { return c.RateLimit.GrantsPerMinute }, 60},
		{"UPBROKER_BACKENDS_M_SECRET_KEY", "s3cr3t", func(c *Config) any { return c.Backends["m"].Settings["secret_key"] }, "s3cr3t"},
		{"UPBROKER_BACKENDS_LOCAL_PATH", "/srv/up", func(c *Config) any { return c.Backends["local"].Settings["path"] }, "/srv/up"},
		{"UPBROKER_SECRETS_TICKET_KEYS", strings.Repeat("a", 32) + "," + strings.Repeat("b", 32), func(c *Config) any { return len(c.Secrets.TicketKeys) }, 2},
		{"UPBROKER_TICKET_KEY", strings.Repeat("z", 40), func(c *Config) any { return c.Secrets.TicketKeys }, []string{strings.Repeat("z", 40)}},
		{"UPBROKER_AUTH_JWT_LEEWAY", "1m", func(c *Config) any { return c.Auth.JWT.Leeway }, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			c := mustParse(t, data, map[string]string{tt.env: tt.val})
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s=%s: got %#v, want %#v", tt.env, tt.val, got, tt.want)
			}
		})
	}
	// An override is validated like the file.
	_, err := Parse(data, testOptions(map[string]string{"UPBROKER_PROFILES_IMAGES_MAX_SIZE": "huge"}))
	if es := fieldErrors(t, err); es[0].Path != "profiles.images.max_size" {
		t.Errorf("bad override: %v", err)
	}
}

func TestEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"server.addr":                   "UPBROKER_SERVER_ADDR",
		"profiles.images.max_size":      "UPBROKER_PROFILES_IMAGES_MAX_SIZE",
		"profiles.user-avatars.expires": "UPBROKER_PROFILES_USER_AVATARS_EXPIRES",
	} {
		if got := EnvName(in); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExpansion(t *testing.T) {
	data := []byte(baseYAML + `
default_profile: ${NOPE}images
secrets:
  ticket_keys: ["${TK}"]
rate_limit:
  store: redis
  bytes_per_day: ${QUOTA}
  redis_url: "redis://:${REDIS_PW}@127.0.0.1:6379/0"
webhooks:
  - url: https://hooks.example/${HOOK_PATH}
    secret: "$x${INJECT}"
    events: [upload.completed]
`)
	env := map[string]string{
		"TK":        strings.Repeat("t", 40),
		"QUOTA":     "1GiB",
		"REDIS_PW":  "pw",
		"HOOK_PATH": "p",
		"INJECT":    "a\nauth:\n  mode: jwt", // must stay inside the string
	}
	c := mustParse(t, data, env)
	tests := []struct {
		name      string
		got, want any
	}{
		{"ticket key", c.Secrets.TicketKeys, []string{env["TK"]}},
		{"size", c.RateLimit.BytesPerDay, GiB},
		{"inside a string", c.RateLimit.RedisURL, "redis://:pw@127.0.0.1:6379/0"},
		{"in a URL", c.Webhooks[0].URL, "https://hooks.example/p"},
		{"no injection, lone $ kept", c.Webhooks[0].Secret, "$xa\nauth:\n  mode: jwt"},
		{"no injection: mode unchanged", c.Auth.Mode, "none"},
		{"unset is empty", c.DefaultProfile, "images"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}

	// ticket_keys: ["${TK}"] with TK unset means no key, not an empty key.
	c = mustParse(t, []byte(baseYAML+"secrets:\n  ticket_keys: [\"${TK}\"]\n"), nil)
	if len(c.Secrets.TicketKeys) != 0 {
		t.Errorf("unset ticket key variable gave %q", c.Secrets.TicketKeys)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  bool
	}{
		{"1234", 1234, false},
		{"0", 0, false},
		{"512KB", 512000, false},
		{"512KiB", 512 * KiB, false},
		{"10MiB", 10 * MiB, false},
		{"10 MiB", 10 * MiB, false},
		{"1GiB", GiB, false},
		{"1.5GiB", GiB + GiB/2, false},
		{"5TiB", 5 * TiB, false},
		{"10MB", 10_000_000, false},
		{"-1", 0, true},
		{"-1MiB", 0, true},
		{"", 0, true},
		{"MiB", 0, true},
		{"10 parsecs", 0, true},
		{"99999999999EiB", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil {
			back, err := ParseSize(got.String())
			if err != nil || back != got {
				t.Errorf("round trip of %q via %q gave %d, %v", tt.in, got.String(), back, err)
			}
		}
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"5m", 5 * time.Minute, false},
		{"1h", time.Hour, false},
		{"90s", 90 * time.Second, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"0s", 0, false},
		{"-5m", 0, true},
		{"5", 0, true},
		{"d", 0, true},
		{"7days", 0, true},
		{"99999999999999d", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.err)
		}
		if err == nil {
			s := FormatDuration(got)
			if back, err := ParseDuration(s); err != nil || back != got {
				t.Errorf("round trip of %q via %q gave %v, %v", tt.in, s, back, err)
			}
		}
	}
	for d, want := range map[time.Duration]string{15 * time.Minute: "15m", time.Hour: "1h", 90 * time.Minute: "1h30m", 7 * 24 * time.Hour: "7d", 25 * time.Hour: "1d1h", 1500 * time.Millisecond: "1.5s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "127.9.9.9:1": true, "[::1]:80": true, "localhost:80": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:80": false, "10.0.0.1:80": false,
		"example.com:80": false, "garbage": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestRedacted(t *testing.T) {
	secrets := map[string]string{
		"ticket":  "ticket-key-0123456789-0123456789-abcdef",
		"old":     "old-ticket-key-0123456789-0123456789-xyz",
		"jwt":     "jwt-hs256-secret-0123456789-0123456789",
		"hook":    "webhook-secret-987654321",
		"redispw": "redis-password-4242",
		"minio":   "minio-secret-key-31337",
	}
	data := []byte(`
server: {addr: 127.0.0.1:8080}
secrets:
  ticket_keys: ["${TICKET}", "` + secrets["old"] + `"]
auth:
  mode: jwt
  jwt: {hs256_secret: "` + secrets["jwt"] + `"}
backends:
  m: {driver: minio, bucket: up, endpoint: "http://127.0.0.1:9000", access_key: minioadmin, secret_key: "${MINIO_SECRET}"}
profiles:
  images: {backend: m, content_types: [image/png], max_size: 1MiB}
rate_limit: {store: redis, redis_url: "redis://user:` + secrets["redispw"] + `@127.0.0.1:6379/0"}
webhooks: [{url: "https://x.example/h", secret: "` + secrets["hook"] + `", events: [upload.completed]}]
`)
	c := mustParse(t, data, map[string]string{"TICKET": secrets["ticket"], "MINIO_SECRET": secrets["minio"]})
	out, err := c.Redacted(isSecret)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range secrets {
		if strings.Contains(string(out), s) {
			t.Errorf("secret %s printed:\n%s", name, out)
		}
	}
	if got := strings.Count(string(out), Redaction); got != 4 { // 2 ticket keys, jwt, webhook, minio secret_key
		if got != 5 {
			t.Errorf("want 5 redactions, got %d:\n%s", got, out)
		}
	}
	for _, want := range []string{"access_key: minioadmin", "bucket: up", "redis://user:xxxxx@127.0.0.1:6379/0"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// SecretValues finds what Redacted hides.
	got := c.SecretValues(isSecret)
	for name, s := range secrets {
		found := false
		for _, g := range got {
			found = found || g == s
		}
		if !found {
			t.Errorf("SecretValues lacks %s", name)
		}
	}
	// With no isSecret, every backend setting is hidden.
	out, _ = c.Redacted(nil)
	if strings.Contains(string(out), "minioadmin") {
		t.Errorf("nil isSecret printed a backend setting:\n%s", out)
	}
}

// The rendered config reads back as the same config: what config check
// prints is what the broker runs with.
func TestRedactedRoundTrip(t *testing.T) {
	c := mustParse(t, variant(t, map[string]any{
		"profiles.images.expires":             "36h",
		"profiles.images.max_size":            "1234567",
		"profiles.images.sniff":               true,
		"server.cors.allowed_origins":         []any{"http://localhost:3000"},
		"server.trusted_proxies":              []any{"10.0.0.0/8"},
		"rate_limit.grants_per_minute":        5,
		"webhooks":                            []any{map[string]any{"url": "https://x.example/h", "secret": "s", "events": []any{"upload.completed"}}},
		"profiles.docs":                       map[string]any{"backend": "local", "content_types": []any{"application/pdf"}, "max_size": "25MiB", "public_base_url": "https://cdn.example"},
		"default_profile":                     "docs",
		"auth.mode":                           "none",
		"backends.local.path":                 "/tmp/x",
		"server.max_header_bytes":             "32KiB",
		"compat.companion.enabled":            true,
		"profiles.images.method":              "post",
		"profiles.images.part_size":           "8MiB",
		"profiles.images.public_read":         true,
		"server.cors.allow_credentials":       true,
		"profiles.images.key":                 "img/{date}/{uuid}{ext}",
		"rate_limit.bytes_per_day":            "1GiB",
		"server.shutdown_timeout":             "45s",
		"profiles.images.content_types":       []any{"image/png"},
		"profiles.images.multipart_threshold": "8MiB",
	}), nil)
	out, err := c.Redacted(func(string, string) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, testOptions(nil))
	if err != nil {
		t.Fatalf("rendered config does not load: %v\n%s", err, out)
	}
	c.Webhooks[0].Secret = Redaction // secrets are always hidden
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v\n%s", back, c, out)
	}
}

func TestExample(t *testing.T) {
	c := mustParse(t, Example, nil)
	if c.Auth.Mode != "none" || c.DefaultProfile != "images" || c.Backends["local"].Driver != "file" {
		t.Errorf("example resolved to %+v", c)
	}
	// With the variable set, the example's ticket key is used.
	key := strings.Repeat("e", 48)
	c = mustParse(t, Example, map[string]string{"UPBROKER_TICKET_KEY": key})
	if !reflect.DeepEqual(c.TicketKeyBytes(), [][]byte{[]byte(key)}) {
		t.Errorf("ticket keys = %q", c.TicketKeyBytes())
	}
}

func TestLoadFile(t *testing.T) {
	if _, err := Load("/nonexistent/upbroker.yaml", testOptions(nil)); err == nil || !strings.Contains(err.Error(), "read config") {
		t.Errorf("missing file: %v", err)
	}
	_, err := Parse([]byte("server: [unclosed"), testOptions(nil))
	if err == nil || !strings.Contains(err.Error(), "YAML") {
		t.Errorf("bad YAML: %v", err)
	}
}
