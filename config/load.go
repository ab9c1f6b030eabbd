package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"

	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override: UPBROKER_SERVER_ADDR
// overrides server.addr.
const EnvPrefix = "UPBROKER_"

// TicketKeyEnv holds one ticket key, used when secrets.ticket_keys is empty.
const TicketKeyEnv = "UPBROKER_TICKET_KEY"

// LoadOptions carry what the config package cannot know by itself. It
// imports no driver, so the caller passes the driver registry's answers.
type LoadOptions struct {
	// BackendSpec describes a driver's settings: every accepted key, the
	// required ones, and the secret ones. ok is false for an unknown
	// driver. When nil, backend settings are not checked.
	BackendSpec func(driver string) (keys, required, secret []string, ok bool)
	// Drivers lists the known driver names, for the error on an unknown one.
	Drivers []string
	// LookupEnv reads the environment; nil means os.LookupEnv. Tests
	// replace it to stay independent of the process environment.
	LookupEnv func(key string) (string, bool)
}

func (o LoadOptions) lookupEnv(k string) (string, bool) {
	if o.LookupEnv != nil {
		return o.LookupEnv(k)
	}
	return os.LookupEnv(k)
}

// Load reads the YAML file at path, expands ${VAR} in its values, applies
// UPBROKER_<PATH> environment overrides and defaults, and validates the
// result. Problems come back together as Errors.
func Load(path string, opts LoadOptions) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, opts)
}

// Parse is Load for a config already in memory.
func Parse(data []byte, opts LoadOptions) (*Config, error) {
	var errs Errors
	checkKeys(data, &errs)

	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, Errors{{Msg: fmt.Sprintf("not valid YAML: %v", err)}}
	}
	// Expansion runs on parsed leaves, never on the raw text, so a
	// variable's value cannot add keys or change the document's shape.
	file := expandTree(v.AllSettings(), opts).(map[string]any)

	r := viper.New()
	setDefaults(r, file)
	if err := r.MergeConfigMap(file); err != nil {
		return nil, fmt.Errorf("merge config: %w", err)
	}
	for _, p := range envPaths(file, opts) {
		if val, ok := opts.lookupEnv(EnvName(p)); ok {
			r.Set(p, val)
		}
	}

	cfg := &Config{}
	decoder{errs: &errs}.decode("", r.AllSettings(), reflect.ValueOf(cfg).Elem())
	cfg.resolve(opts)
	cfg.validate(opts, &errs)
	if len(errs) > 0 {
		return cfg, errs.sorted()
	}
	return cfg, nil
}

// EnvName is the environment variable that overrides a key path:
// profiles.images.max_size → UPBROKER_PROFILES_IMAGES_MAX_SIZE. Characters
// a shell cannot put in a name (the - of a profile name) become _.
func EnvName(path string) string {
	var b strings.Builder
	b.WriteString(EnvPrefix)
	for _, r := range strings.ToUpper(path) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// envPaths lists every key an environment variable may override: the
// fixed keys, plus each profile's and backend's keys for the profiles and
// backends the file names. Lists of blocks (webhooks, api_keys) are not
// overridable one field at a time.
func envPaths(file map[string]any, opts LoadOptions) []string {
	var out []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, t reflect.Type) {
		for name, i := range fieldsOf(t) {
			f := t.Field(i)
			p := join(prefix, name)
			switch {
			case f.Type == backendType:
			case f.Type.Kind() == reflect.Map && f.Type.Elem() == backendType:
				for _, b := range names(file, p) {
					bp := join(p, b)
					out = append(out, join(bp, "driver"))
					driver, _ := lookup(file, join(bp, "driver")).(string)
					if opts.BackendSpec != nil {
						if keys, _, _, ok := opts.BackendSpec(driver); ok {
							for _, k := range keys {
								out = append(out, join(bp, k))
							}
						}
					}
				}
			case f.Type.Kind() == reflect.Map:
				for _, n := range names(file, p) {
					walk(join(p, n), f.Type.Elem())
				}
			case f.Type.Kind() == reflect.Struct && f.Type != durationType:
				walk(p, f.Type)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			default:
				out = append(out, p)
			}
		}
	}
	walk("", reflect.TypeOf(Config{}))
	return out
}

// lookup finds a dotted path in the parsed tree.
func lookup(tree map[string]any, path string) any {
	var cur any = tree
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// names lists the keys of the mapping at path (profile or backend names).
func names(tree map[string]any, path string) []string {
	m, _ := lookup(tree, path).(map[string]any)
	return sortedKeys(m)
}

var varRe = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandTree replaces ${VAR} in every string leaf. An unset variable
// becomes the empty string, which validation then reports where a value is
// required. Only the braced form expands: a lone $ (common in secrets)
// stays as written.
func expandTree(v any, opts LoadOptions) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[k] = expandTree(val, opts)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = expandTree(val, opts)
		}
		return out
	case string:
		return varRe.ReplaceAllStringFunc(x, func(m string) string {
			val, _ := opts.lookupEnv(m[2 : len(m)-1])
			return val
		})
	}
	return v
}

// checkKeys looks at the file as written, before viper sees it. Viper
// folds keys to lower case (so Images and images would merge), splits them
// on dots, and drops keys whose value is empty, so an unknown key written
// as `profile:` would pass unnoticed. Key names and unknown keys are
// therefore checked here.
func checkKeys(data []byte, errs *Errors) {
	var root any
	if err := yaml.Unmarshal(data, &root); err != nil {
		return // viper reports the syntax error
	}
	checkUnknown("", root, reflect.TypeOf(Config{}), errs)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				p := join(path, k)
				switch {
				case strings.Contains(k, "."):
					errs.add(p, "a key may not contain a dot")
				case k != strings.ToLower(k):
					errs.add(p, "keys are case-insensitive; write it as %q", strings.ToLower(k))
				}
				walk(p, x[k])
			}
		case map[any]any:
			errs.add(path, "every key must be a string")
		case []any:
			for i, it := range x {
				walk(index(path, i), it)
			}
		}
	}
	walk("", root)
}

// checkUnknown reports keys that the config types do not have, by walking
// the raw tree along them. Values are not checked: ${VAR} is not
// expanded yet, and the decoder reports bad values on the merged tree.
func checkUnknown(path string, raw any, t reflect.Type, errs *Errors) {
	switch {
	case t == durationType || t == sizeType || t == backendType:
	case t.Kind() == reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			return
		}
		fields := fieldsOf(t)
		for _, k := range sortedKeys(m) {
			i, ok := fields[strings.ToLower(k)]
			if !ok {
				errs.add(join(path, k), "unknown key%s", suggest(k, keysOf(fields)))
				continue
			}
			checkUnknown(join(path, k), m[k], t.Field(i).Type, errs)
		}
	case t.Kind() == reflect.Map:
		m, _ := raw.(map[string]any)
		for _, k := range sortedKeys(m) {
			checkUnknown(join(path, k), m[k], t.Elem(), errs)
		}
	case t.Kind() == reflect.Slice:
		items, _ := raw.([]any)
		for i, it := range items {
			checkUnknown(index(path, i), it, t.Elem(), errs)
		}
	}
}
