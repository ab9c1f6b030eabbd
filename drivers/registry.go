package drivers

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// Settings are a backend's keys from the config file, already expanded.
type Settings map[string]string

// Env is what the broker hands every driver it opens.
type Env struct {
	// Backend is the backend's name in the config (not the driver's).
	Backend string
	// BaseURL is how clients reach the broker (server.public_url), for
	// drivers whose signed URLs point back at it.
	BaseURL string
	// SigningKey is a per-backend key derived from the ticket key, for
	// drivers that sign URLs themselves.
	SigningKey []byte
	Logger     *slog.Logger
}

// Spec describes one driver: its settings and how to open it.
type Spec struct {
	// Name is the value of `driver:` in the config.
	Name string
	// Keys lists every setting the driver accepts (besides `driver`).
	Keys []string
	// Required lists the settings that must be present and non-empty.
	Required []string
	// Secret lists the settings that must never be printed or logged.
	Secret []string
	// Open connects a backend. It may check credentials but should not
	// require the store to be up: readiness is Ping's job.
	Open func(ctx context.Context, s Settings, env Env) (Driver, error)
}

var (
	mu    sync.RWMutex
	specs = map[string]Spec{}
)

// Register makes a driver available by name. It panics on a duplicate name,
// which is a programming error caught at init.
func Register(s Spec) {
	mu.Lock()
	defer mu.Unlock()
	if s.Name == "" || s.Open == nil {
		panic("drivers: Register needs a name and an Open func")
	}
	if _, dup := specs[s.Name]; dup {
		panic("drivers: driver registered twice: " + s.Name)
	}
	specs[s.Name] = s
}

// Lookup finds a registered driver.
func Lookup(name string) (Spec, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := specs[name]
	return s, ok
}

// Names lists the registered drivers, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Open opens a backend with the named driver, after checking its settings.
func Open(ctx context.Context, driver string, s Settings, env Env) (Driver, error) {
	spec, ok := Lookup(driver)
	if !ok {
		return nil, fmt.Errorf("%w: unknown driver %q (known: %v)", ErrConfig, driver, Names())
	}
	if errs := spec.Check(s); len(errs) > 0 {
		return nil, fmt.Errorf("%w: %v", ErrConfig, errs[0])
	}
	return spec.Open(ctx, s, env)
}

// SettingError names one bad setting of a backend.
type SettingError struct {
	Key string
	Msg string
}

func (e SettingError) Error() string { return e.Key + ": " + e.Msg }

// Check reports unknown and missing settings, one error per key.
func (s Spec) Check(set Settings) []SettingError {
	var errs []SettingError
	known := map[string]bool{}
	for _, k := range s.Keys {
		known[k] = true
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !known[k] {
			errs = append(errs, SettingError{k, fmt.Sprintf("unknown key for driver %q (accepted: %v)", s.Name, s.Keys)})
		}
	}
	for _, k := range s.Required {
		if set[k] == "" {
			errs = append(errs, SettingError{k, fmt.Sprintf("required by driver %q", s.Name)})
		}
	}
	return errs
}

// IsSecret tells whether a setting of this driver must be redacted.
func (s Spec) IsSecret(key string) bool {
	for _, k := range s.Secret {
		if k == key {
			return true
		}
	}
	return false
}
