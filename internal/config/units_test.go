package config

import (
	"math"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "90m", want: 90 * time.Minute},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "0", want: 0},
		{in: "365d", want: 365 * 24 * time.Hour},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "2w3d", want: 17 * 24 * time.Hour},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "-1d", want: -24 * time.Hour},
		{in: "", err: "empty duration"},
		{in: "10", err: `duration "10" has no unit (s, m, h, d or w)`},
		{in: "1y", err: `invalid duration "1y"`},
		{in: "1.5d", err: `invalid duration "1.5d"`},
		{in: "d", err: `invalid duration "d"`},
		{in: "--1d", err: `invalid duration "--1d"`},
		{in: "1d-1h", err: `invalid duration "1d-1h"`},
		{in: "3d2w", err: `invalid duration "3d2w"`},
		{in: "999999999999d", err: `duration "999999999999d" is too large`},
		{in: "99999999999999999999w", err: `duration "99999999999999999999w" is too large`},
		{in: "106751d23h47m17s", err: `duration "106751d23h47m17s" is too large`},
	} {
		got, err := ParseDuration(tc.in)
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("ParseDuration(%q) error = %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got.Std() != tc.want):
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got.Std(), err, tc.want)
		}
	}
}

func TestDurationString(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{730 * 24 * time.Hour, "730d"},
		{-24 * time.Hour, "-1d"},
		{36 * time.Hour, "36h"},
		{90 * time.Second, "90s"},
		{90 * time.Minute, "90m"},
		{14 * 24 * time.Hour, "14d"},
		{1500 * time.Millisecond, "1.5s"},
	} {
		if got := Duration(tc.d).String(); got != tc.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tc.d, got, tc.want)
		}
		back, err := ParseDuration(Duration(tc.d).String())
		if err != nil || back.Std() != tc.d {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", Duration(tc.d).String(), back.Std(), err, tc.d)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  string
	}{
		{in: "2GiB", want: 2 << 30},
		{in: "512MiB", want: 512 << 20},
		{in: "2G", want: 2 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "4KiB", want: 4 << 10},
		{in: "2gib", want: 2 << 30},
		{in: "2 GiB", want: 2 << 30},
		{in: "2GB", want: 2e9},
		{in: "3MB", want: 3e6},
		{in: "1073741824", want: 1 << 30},
		{in: "100B", want: 100},
		{in: "0", want: 0},
		{in: "", err: `invalid size ""; write a whole number with an optional unit, e.g. 2GiB, 512MiB, 2G or 1073741824`},
		{in: "GiB", err: `invalid size "GiB"; write a whole number with an optional unit, e.g. 2GiB, 512MiB, 2G or 1073741824`},
		{in: "-1G", err: `invalid size "-1G"; write a whole number with an optional unit, e.g. 2GiB, 512MiB, 2G or 1073741824`},
		{in: "1.5G", err: `invalid size "1.5G": unknown unit ".5G"; use B, KiB, MiB, GiB, TiB (or K, M, G, T), or KB, MB, GB, TB`},
		{in: "2PiB", err: `invalid size "2PiB": unknown unit "PiB"; use B, KiB, MiB, GiB, TiB (or K, M, G, T), or KB, MB, GB, TB`},
		{in: "9999999TiB", err: `size "9999999TiB" is too large`},
		{in: "99999999999999999999", err: `size "99999999999999999999" is too large`},
	} {
		got, err := ParseSize(tc.in)
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("ParseSize(%q) error = %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got.Bytes() != tc.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got.Bytes(), err, tc.want)
		}
	}
}

func TestSizeString(t *testing.T) {
	for _, tc := range []struct {
		s    Size
		want string
	}{
		{0, "0"},
		{2 << 30, "2GiB"},
		{1536 << 20, "1536MiB"},
		{2 << 40, "2TiB"},
		{1000, "1000"},
		{math.MaxInt64, "9223372036854775807"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(tc.s), got, tc.want)
		}
		if back, err := ParseSize(tc.want); err != nil || back != tc.s {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.want, back, err, tc.s)
		}
	}
}
