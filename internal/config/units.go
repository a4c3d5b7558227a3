package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d in the form ParseDuration reads, in the largest one
// unit that holds it whole, as people write durations: "365d", "36h",
// "90m", "90s". Other values (fractions of a second) use Go's form
// ("1.5s", "1m0.25s").
func (d Duration) String() string {
	t := time.Duration(d)
	if t == 0 {
		return "0s"
	}
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{day, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if t%u.unit == 0 {
			return strconv.FormatInt(int64(t/u.unit), 10) + u.name
		}
	}
	return t.String()
}

// MarshalJSON writes d as a string in kiln's notation ("7d", "90s"), the
// way JSON reports carry durations.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.Quote(d.String())), nil
}

// UnmarshalJSON reads a duration string in kiln's notation.
func (d *Duration) UnmarshalJSON(data []byte) error {
	s, err := strconv.Unquote(string(data))
	if err != nil {
		return fmt.Errorf("duration: want a string such as \"7d\" or \"90s\", got %s", data)
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDuration reads a Go duration ("90m", "1h30m") optionally preceded by
// weeks and days ("2w", "365d", "1d12h").
func ParseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if strings.Trim(s, "0123456789") == "" && strings.Trim(s, "0") != "" {
		return 0, fmt.Errorf("duration %q has no unit (s, m, h, d or w)", s)
	}
	rest, neg := strings.CutPrefix(s, "-")
	var total time.Duration
	for _, u := range []struct {
		suffix string
		unit   time.Duration
	}{{"w", week}, {"d", day}} {
		i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if i <= 0 || rest[i:i+1] != u.suffix {
			continue
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > math.MaxInt64/int64(u.unit) {
			return 0, fmt.Errorf("duration %q is too large", s)
		}
		total += time.Duration(n) * u.unit
		if total < 0 {
			return 0, fmt.Errorf("duration %q is too large", s)
		}
		rest = rest[i+1:]
	}
	if rest != "" {
		if rest[0] == '-' || rest[0] == '+' {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		t, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if t > math.MaxInt64-total {
			return 0, fmt.Errorf("duration %q is too large", s)
		}
		total += t
	}
	if neg {
		total = -total
	}
	return Duration(total), nil
}

// Bytes returns s as a byte count.
func (s Size) Bytes() int64 { return int64(s) }

// String formats s with the largest binary unit that divides it ("2GiB"),
// or as plain bytes.
func (s Size) String() string {
	for _, u := range sizeUnits[:4] {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// sizeUnits lists the units ParseSize reads, largest binary unit first. A
// bare letter is binary, as in qemu-img and truncate: "2G" is 2 GiB.
var sizeUnits = []struct {
	name string
	n    int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3},
	{"B", 1}, {"", 1},
}

// ParseSize reads a byte count: plain bytes ("1073741824"), binary units
// ("512MiB", "2GiB", "1TiB", or "2G" meaning the same), or decimal units
// ("2GB" is 2×10⁹ bytes). Units are case-insensitive.
func ParseSize(s string) (Size, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return 0, fmt.Errorf("invalid size %q; write a whole number with an optional unit, e.g. 2GiB, 512MiB, 2G or 1073741824", s)
	}
	for _, u := range sizeUnits {
		if !strings.EqualFold(unit, u.name) {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err != nil || n > math.MaxInt64/u.n {
			return 0, fmt.Errorf("size %q is too large", s)
		}
		return Size(n * u.n), nil
	}
	return 0, fmt.Errorf("invalid size %q: unknown unit %q; use B, KiB, MiB, GiB, TiB (or K, M, G, T), or KB, MB, GB, TB", s, unit)
}
