package config

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// Byte multiples used by defaults and limits.
const (
	KiB Size = 1 << 10
	MiB Size = 1 << 20
	GiB Size = 1 << 30
	TiB Size = 1 << 40
)

// ParseSize reads a byte count: 1234, 512KB (SI, 1000), 10MiB (IEC, 1024),
// 1.5GiB. It refuses negative numbers and values past int64.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty size")
	}
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	n, err := humanize.ParseBytes(t)
	if err != nil {
		return 0, fmt.Errorf("size %q is not a byte count like 1234, 512KB, 10MiB or 1GiB", s)
	}
	if n > math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(n), nil
}

// Int64 is the size in bytes.
func (s Size) Int64() int64 { return int64(s) }

// String writes the size the way a person would: 10MiB, or a plain byte
// count when it is not a whole multiple. ParseSize reads it back exactly.
func (s Size) String() string {
	units := []struct {
		n    Size
		name string
	}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}}
	if s > 0 {
		for _, u := range units {
			if s%u.n == 0 {
				return strconv.FormatInt(int64(s/u.n), 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

var daysRe = regexp.MustCompile(`^(\d+)d(.*)$`)

// ParseDuration reads a Go duration (90s, 5m, 1h30m) and also whole days
// (7d, 1d12h), since expiries and grace periods are often said in days.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "-") {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	var days time.Duration
	if m := daysRe.FindStringSubmatch(t); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > int64(math.MaxInt64/(24*time.Hour)) {
			return 0, fmt.Errorf("duration %q is too large", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		t = m[2]
		if t == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, fmt.Errorf("duration %q is not like 30s, 5m, 1h or 7d", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	if days > 0 && d > math.MaxInt64-days {
		return 0, fmt.Errorf("duration %q is too large", s)
	}
	return days + d, nil
}

// FormatDuration writes a duration compactly (15m, 1h30m, 7d) so that
// ParseDuration reads it back exactly.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	day := 24 * time.Hour
	var b strings.Builder
	if d >= day {
		b.WriteString(strconv.FormatInt(int64(d/day), 10) + "d")
		d %= day
		if d == 0 {
			return b.String()
		}
	}
	s := d.String()
	// time.Duration.String pads with zero units ("1h0m0s"); drop them.
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	b.WriteString(s)
	return b.String()
}
