package config

import (
	"fmt"
	"sort"
	"strings"
)

// FieldError is one problem with the config, at one key path such as
// profiles.images.max_size.
type FieldError struct {
	Path string
	Msg  string
}

func (e FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Errors is every problem Load found, so the user fixes them in one pass
// instead of one per run. It prints one error per line.
type Errors []FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// add records a problem at path. Only the first problem at a path is kept:
// a value that failed to decode would otherwise also fail validation.
func (es *Errors) add(path, format string, args ...any) {
	for _, e := range *es {
		if e.Path == path {
			return
		}
	}
	*es = append(*es, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// sorted orders errors by path so output is stable; the order errors were
// found in depends on map iteration.
func (es Errors) sorted() Errors {
	out := append(Errors(nil), es...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// join builds a child path.
func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func index(parent string, i int) string { return fmt.Sprintf("%s[%d]", parent, i) }
