package config

import (
	"bytes"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Redaction is what a secret is replaced with.
const Redaction = "<redacted>"

// TicketKeyBytes returns the ticket keys as bytes: the first signs, all
// verify. Each key is used as written (its UTF-8 bytes).
func (c *Config) TicketKeyBytes() [][]byte {
	out := make([][]byte, 0, len(c.Secrets.TicketKeys))
	for _, k := range c.Secrets.TicketKeys {
		out = append(out, []byte(k))
	}
	return out
}

// SecretValues lists every secret value in the config (ticket keys, the JWT
// secret, webhook secrets, the Redis password, and the backend settings
// that isSecret marks), so that tests and log filters can look for them.
func (c *Config) SecretValues(isSecret func(driver, key string) bool) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	for _, k := range c.Secrets.TicketKeys {
		add(k)
	}
	add(c.Auth.JWT.HS256Secret)
	for _, w := range c.Webhooks {
		add(w.Secret)
	}
	for _, s := range []string{c.RateLimit.RedisURL, c.Auth.Forward.URL, c.Auth.JWT.JWKSURL} {
		if u, err := url.Parse(s); err == nil && u.User != nil {
			p, _ := u.User.Password()
			add(p)
		}
	}
	for _, name := range sortedNames(c.Backends) {
		b := c.Backends[name]
		for _, k := range sortedNames(b.Settings) {
			if isSecret == nil || isSecret(b.Driver, k) {
				add(b.Settings[k])
			}
		}
	}
	return out
}

// Redacted renders the resolved config as YAML, defaults included, with
// every secret replaced by <redacted>. isSecret tells which backend
// settings are secret; nil redacts them all. An empty secret stays empty,
// so that an unset variable shows.
func (c *Config) Redacted(isSecret func(driver, key string) bool) ([]byte, error) {
	r := *c
	r.Secrets.TicketKeys = redactAll(c.Secrets.TicketKeys)
	r.Auth.JWT.HS256Secret = redact(c.Auth.JWT.HS256Secret)
	r.Auth.Forward.URL = redactURL(c.Auth.Forward.URL)
	r.Auth.JWT.JWKSURL = redactURL(c.Auth.JWT.JWKSURL)
	r.RateLimit.RedisURL = redactURL(c.RateLimit.RedisURL)
	r.Webhooks = make([]Webhook, len(c.Webhooks))
	for i, w := range c.Webhooks {
		w.Secret = redact(w.Secret)
		w.URL = redactURL(w.URL)
		r.Webhooks[i] = w
	}
	r.Backends = make(map[string]Backend, len(c.Backends))
	for name, b := range c.Backends {
		nb := Backend{Driver: b.Driver, Settings: make(map[string]string, len(b.Settings))}
		for k, v := range b.Settings {
			if isSecret == nil || isSecret(b.Driver, k) {
				v = redact(v)
			}
			nb.Settings[k] = v
		}
		r.Backends[name] = nb
	}
	node := toNode(reflect.ValueOf(r))
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render config: %w", err)
	}
	return buf.Bytes(), nil
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return Redaction
}

func redactAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = redact(s)
	}
	return out
}

// redactURL hides the password of a URL such as redis://:pw@host/0.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if s == "" {
			return ""
		}
		return Redaction // unparsable: it might hold anything
	}
	return u.Redacted()
}

// toNode renders a value in the config's own vocabulary: snake_case keys
// in declaration order, durations like 15m, sizes like 10MiB.
func toNode(v reflect.Value) *yaml.Node {
	t := v.Type()
	switch {
	case t == durationType:
		return scalar(FormatDuration(time.Duration(v.Int())), "!!str")
	case t == sizeType:
		if s := Size(v.Int()).String(); s != strconv.FormatInt(v.Int(), 10) {
			return scalar(s, "!!str")
		}
		return scalar(strconv.FormatInt(v.Int(), 10), "!!int")
	case t == backendType:
		b := v.Interface().(Backend)
		n := &yaml.Node{Kind: yaml.MappingNode}
		n.Content = append(n.Content, scalar("driver", "!!str"), scalar(b.Driver, "!!str"))
		for _, k := range sortedNames(b.Settings) {
			n.Content = append(n.Content, scalar(k, "!!str"), scalar(b.Settings[k], "!!str"))
		}
		return n
	case t.Kind() == reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for i := 0; i < t.NumField(); i++ {
			name := t.Field(i).Tag.Get("mapstructure")
			if name == "" || name == "-" {
				continue
			}
			n.Content = append(n.Content, scalar(name, "!!str"), toNode(v.Field(i)))
		}
		return n
	case t.Kind() == reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.String()
		}
		sort.Strings(names)
		for _, k := range names {
			n.Content = append(n.Content, scalar(k, "!!str"), toNode(v.MapIndex(reflect.ValueOf(k))))
		}
		return n
	case t.Kind() == reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := 0; i < v.Len(); i++ {
			item := toNode(v.Index(i))
			if item.Kind == yaml.MappingNode {
				n.Style = 0
			}
			n.Content = append(n.Content, item)
		}
		return n
	case t.Kind() == reflect.Bool:
		return scalar(strconv.FormatBool(v.Bool()), "!!bool")
	case t.Kind() == reflect.Int:
		return scalar(strconv.FormatInt(v.Int(), 10), "!!int")
	default:
		return scalar(v.String(), "!!str")
	}
}

func scalar(s, tag string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Tag: tag}
}
