package journal

import (
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var idForm = regexp.MustCompile(`^kiln-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$`)

func TestNewAssetIDForm(t *testing.T) {
	tests := []struct {
		now  time.Time
		want string // the id up to the random suffix
	}{
		{time.Date(2026, 11, 21, 9, 30, 12, 999_999_999, time.UTC), "kiln-20261121T093012Z-"},
		// Other zones are converted to UTC.
		{time.Date(2026, 11, 21, 10, 30, 12, 0, time.FixedZone("CET", 3600)), "kiln-20261121T093012Z-"},
		{time.Date(2027, 1, 1, 0, 59, 0, 0, time.FixedZone("X", 3600)), "kiln-20261231T235900Z-"},
		{time.Date(1999, 2, 3, 4, 5, 6, 0, time.UTC), "kiln-19990203T040506Z-"},
	}
	for _, tt := range tests {
		id := NewAssetID(tt.now)
		if !idForm.MatchString(id) || !strings.HasPrefix(id, tt.want) {
			t.Errorf("NewAssetID(%v) = %q, want %s followed by 6 hex digits", tt.now, id, tt.want)
			continue
		}
		got, err := ParseAssetID(id)
		if err != nil {
			t.Errorf("ParseAssetID(%q): %v", id, err)
			continue
		}
		if want := tt.now.Truncate(time.Second).UTC(); !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseAssetID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestNewAssetIDOrder(t *testing.T) {
	t0 := time.Date(2009, 12, 31, 23, 59, 58, 0, time.UTC)
	steps := []time.Duration{time.Second, time.Second, time.Minute, 9 * time.Hour, 24 * time.Hour,
		31 * 24 * time.Hour, 365 * 24 * time.Hour, 1500 * time.Millisecond, 20 * 365 * 24 * time.Hour}
	now := t0
	var ids []string
	for _, d := range steps {
		now = now.Add(d)
		ids = append(ids, NewAssetID(now))
	}
	if !slices.IsSorted(ids) {
		t.Errorf("ids made at increasing times are not sorted: %q", ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			t.Errorf("id %q (made earlier) >= %q", ids[i-1], ids[i])
		}
	}
}

func TestNewAssetIDUnique(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 30, 12, 0, time.UTC)
	const n = 10_000
	seen := make(map[string]bool, n)
	for range n {
		id := NewAssetID(now)
		if seen[id] {
			t.Fatalf("duplicate id %q among %d made in one second", id, len(seen))
		}
		seen[id] = true
	}
	// The suffixes are random, not a counter: they spread over the space.
	var lo, hi int
	for id := range seen {
		if id[len(id)-6] < '8' {
			lo++
		} else {
			hi++
		}
	}
	if lo < n/4 || hi < n/4 {
		t.Errorf("suffixes are not spread: %d start below 8, %d above", lo, hi)
	}
}

func TestParseAssetIDErrors(t *testing.T) {
	tests := []struct {
		in, why string
	}{
		{"", "length 0"},
		{"kiln-20261121T093012Z-7f3a9", "length 27"},
		{"kiln-20261121T093012Z-7f3a9c0", "length 29"},
		{"kiln-20261121-7f3a9c", "length 20"},
		{"kilm-20261121T093012Z-7f3a9c", `does not start with "kiln-"`},
		{"KILN-20261121T093012Z-7f3a9c", `does not start with "kiln-"`},
		{"kiln-20261321T093012Z-7f3a9c", `time "20261321T093012Z"`},
		{"kiln-20261121T096012Z-7f3a9c", `time "20261121T096012Z"`},
		{"kiln-20261121 093012Z-7f3a9c", `time "20261121 093012Z"`},
		{"kiln-20261121T093012X-7f3a9c", `time "20261121T093012X"`},
		{"kiln-2026112aT093012Z-7f3a9c", `time "2026112aT093012Z"`},
		{"kiln-20261121T093012Z_7f3a9c", `'_' after the time`},
		{"kiln-20261121T093012Z-7F3A9C", `suffix "7F3A9C"`},
		{"kiln-20261121T093012Z-7f3a9g", `suffix "7f3a9g"`},
		{"kiln-20261121T093012Z-7f3a9\x00", `suffix "7f3a9\x00"`},
	}
	for _, tt := range tests {
		_, err := ParseAssetID(tt.in)
		if err == nil {
			t.Errorf("ParseAssetID(%q) succeeded, want an error", tt.in)
			continue
		}
		msg := err.Error()
		if !errors.Is(err, ErrBadAssetID) {
			t.Errorf("ParseAssetID(%q) error %q does not match ErrBadAssetID", tt.in, msg)
		}
		for _, want := range []string{tt.why, "kiln-YYYYMMDDTHHMMSSZ-xxxxxx", idExample} {
			if !strings.Contains(msg, want) {
				t.Errorf("ParseAssetID(%q) error %q does not contain %q", tt.in, msg, want)
			}
		}
	}
}
