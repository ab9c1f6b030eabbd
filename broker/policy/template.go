package policy

import (
	"fmt"
	"strings"
)

type placeholder uint8

const (
	literal placeholder = iota
	phPrincipal
	phUUID
	phExt
	phDate
	phProfile
)

type segment struct {
	kind placeholder
	text string
}

var placeholders = map[string]placeholder{
	"principal": phPrincipal, "uuid": phUUID, "ext": phExt, "date": phDate, "profile": phProfile,
}

// parseTemplate splits a key template into literals and placeholders.
func parseTemplate(t string) ([]segment, error) {
	var segs []segment
	hasUUID := false
	for t != "" {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			segs = append(segs, segment{kind: literal, text: t})
			break
		}
		if i > 0 {
			segs = append(segs, segment{kind: literal, text: t[:i]})
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed { in template")
		}
		name := t[i+1 : i+j]
		ph, ok := placeholders[name]
		if !ok {
			return nil, fmt.Errorf("unknown placeholder {%s} (known: {principal} {uuid} {ext} {date} {profile})", name)
		}
		hasUUID = hasUUID || ph == phUUID
		segs = append(segs, segment{kind: ph})
		t = t[i+j+1:]
	}
	for _, s := range segs {
		if s.kind == literal && strings.ContainsAny(s.text, "{}") {
			return nil, fmt.Errorf("stray brace in template")
		}
	}
	// Without {uuid} two uploads would share a key, and the second would
	// always be refused as an overwrite.
	if !hasUUID {
		return nil, fmt.Errorf("template must contain {uuid}")
	}
	return segs, nil
}

func (p *Profile) key(principal string, ext, uuid, date []byte) string {
	n := 0
	for _, s := range p.tmpl {
		switch s.kind {
		case literal:
			n += len(s.text)
		case phPrincipal:
			n += len(principal)
		case phUUID:
			n += len(uuid)
		case phExt:
			n += len(ext)
		case phDate:
			n += len(date)
		case phProfile:
			n += len(p.safeName)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range p.tmpl {
		switch s.kind {
		case literal:
			b.WriteString(s.text)
		case phPrincipal:
			b.WriteString(principal)
		case phUUID:
			b.Write(uuid)
		case phExt:
			b.Write(ext)
		case phDate:
			b.Write(date)
		case phProfile:
			b.WriteString(p.safeName)
		}
	}
	return b.String()
}
