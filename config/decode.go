package config

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

var (
	durationType = reflect.TypeOf(time.Duration(0))
	sizeType     = reflect.TypeOf(Size(0))
	backendType  = reflect.TypeOf(Backend{})
)

// decoder fills the Config from the merged settings tree. It is written
// out rather than left to mapstructure so that every problem carries its
// full key path, an unknown key gets a "did you mean", and all problems
// are collected instead of stopping at the first.
type decoder struct {
	errs *Errors
}

func (d decoder) decode(path string, raw any, dst reflect.Value) {
	if raw == nil {
		return // an empty YAML value (`cors:`) leaves the default
	}
	t := dst.Type()
	switch {
	case t == durationType:
		v, err := toDuration(raw)
		if err != nil {
			d.errs.add(path, "%v", err)
			return
		}
		dst.SetInt(int64(v))
	case t == sizeType:
		v, err := toSize(raw)
		if err != nil {
			d.errs.add(path, "%v", err)
			return
		}
		dst.SetInt(int64(v))
	case t == backendType:
		d.backend(path, raw, dst)
	case t.Kind() == reflect.Struct:
		d.structure(path, raw, dst)
	case t.Kind() == reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			d.errs.add(path, "expected a mapping of names to blocks, got %s", describe(raw))
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMap(t))
		}
		for _, k := range sortedKeys(m) {
			elem := reflect.New(t.Elem()).Elem()
			d.decode(join(path, k), m[k], elem)
			dst.SetMapIndex(reflect.ValueOf(k), elem)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		list, err := toStrings(raw)
		if err != nil {
			d.errs.add(path, "%v", err)
			return
		}
		if len(list) > 0 { // [] and absent read the same: nil
			dst.Set(reflect.ValueOf(list))
		}
	case t.Kind() == reflect.Slice:
		items, ok := raw.([]any)
		if !ok {
			d.errs.add(path, "expected a list, got %s", describe(raw))
			return
		}
		if len(items) == 0 {
			return
		}
		out := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			d.decode(index(path, i), it, out.Index(i))
		}
		dst.Set(out)
	case t.Kind() == reflect.String:
		s, err := toString(raw)
		if err != nil {
			d.errs.add(path, "%v", err)
			return
		}
		dst.SetString(s)
	case t.Kind() == reflect.Bool:
		b, err := toBool(raw)
		if err != nil {
			d.errs.add(path, "%v", err)
			return
		}
		dst.SetBool(b)
	case t.Kind() == reflect.Int:
		// A byte count such as max_header_bytes reads like any size.
		if strings.HasSuffix(path, "_bytes") {
			v, err := toSize(raw)
			if err != nil {
				d.errs.add(path, "%v", err)
				return
			}
			if int64(v) > math.MaxInt32 {
				d.errs.add(path, "%s is too large", v)
				return
			}
			dst.SetInt(int64(v))
			return
		}
		n, err := toInt(raw)
		if err != nil {
			d.errs.add(path, "%v", err)
			return
		}
		dst.SetInt(n)
	default:
		// Only reachable if types.go grows a field of a new kind.
		d.errs.add(path, "internal: cannot decode into %s", t)
	}
}

func (d decoder) structure(path string, raw any, dst reflect.Value) {
	m, ok := raw.(map[string]any)
	if !ok {
		d.errs.add(path, "expected a mapping, got %s", describe(raw))
		return
	}
	fields := fieldsOf(dst.Type())
	for _, k := range sortedKeys(m) {
		i, ok := fields[k]
		if !ok {
			d.errs.add(join(path, k), "unknown key%s", suggest(k, keysOf(fields)))
			continue
		}
		d.decode(join(path, k), m[k], dst.Field(i))
	}
}

// backend reads `driver:` and keeps every other key as a string setting;
// which settings are allowed is the driver's business, checked later.
func (d decoder) backend(path string, raw any, dst reflect.Value) {
	m, ok := raw.(map[string]any)
	if !ok {
		d.errs.add(path, "expected a mapping with driver: and its settings, got %s", describe(raw))
		return
	}
	b := Backend{Settings: map[string]string{}}
	for _, k := range sortedKeys(m) {
		s, err := toString(m[k])
		if err != nil {
			d.errs.add(join(path, k), "%v", err)
			continue
		}
		if k == "driver" {
			b.Driver = s
			continue
		}
		b.Settings[k] = s
	}
	dst.Set(reflect.ValueOf(b))
}

// fieldsOf maps each mapstructure name of a struct to its field index.
func fieldsOf(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ",")
		if name == "" || name == "-" {
			continue
		}
		out[name] = i
	}
	return out
}

func keysOf(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func describe(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

// toString accepts any scalar: `region: 1` or `path_style: true` in a
// backend block are meant as strings.
func toString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("expected a string, got %s", describe(v))
}

func toStrings(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		// An environment variable holds a list as comma-separated values.
		var out []string
		for _, p := range strings.Split(x, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out, nil
	case []any:
		out := make([]string, 0, len(x))
		for i, it := range x {
			s, err := toString(it)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("expected a list of strings, got %s", describe(v))
}

func toBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		if err == nil {
			return b, nil
		}
	}
	return false, fmt.Errorf("expected true or false, got %v", v)
}

func toInt(v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int64:
		return x, nil
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), nil
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("expected a whole number, got %v", v)
}

func toSize(v any) (Size, error) {
	switch x := v.(type) {
	case string:
		return ParseSize(x)
	default:
		n, err := toInt(v)
		if err != nil {
			return 0, fmt.Errorf("expected a size like 1234, 512KB, 10MiB or 1GiB, got %v", v)
		}
		if n < 0 {
			return 0, fmt.Errorf("size %d is negative", n)
		}
		return Size(n), nil
	}
}

func toDuration(v any) (time.Duration, error) {
	s, ok := v.(string)
	if !ok {
		// A bare number is ambiguous (seconds? nanoseconds?): ask for a unit.
		return 0, fmt.Errorf("duration %v needs a unit, like 30s, 5m, 1h or 7d", v)
	}
	return ParseDuration(s)
}

// suggest returns `; did you mean "x"?` for the known key closest to k, or
// nothing when none is close enough to be a likely typo.
func suggest(k string, known []string) string {
	best, bestD := "", math.MaxInt
	for _, c := range known {
		if d := levenshtein(k, c); d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(2, len(k)/3)
	if best == "" || bestD > limit {
		if len(known) > 0 && len(known) <= 12 {
			return fmt.Sprintf(" (known keys: %s)", strings.Join(known, ", "))
		}
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
