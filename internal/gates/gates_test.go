package gates

import (
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/config"
)

func TestParseOverrides(t *testing.T) {
	for _, c := range []struct {
		names  []string
		reason string
		want   string // error text; "" for none
	}{
		{nil, "", ""},
		{[]string{"interval"}, "hotfix", ""},
		{[]string{"interval", "newer"}, "roll back the roll forward", ""},
		{[]string{"interval"}, "", "needs --reason"},
		{[]string{"interval"}, "   ", "needs --reason"},
		{nil, "why", "--reason goes with --override-gate"},
		{[]string{"tested"}, "trust me", "not a gate that may be overridden"},
		{[]string{"available"}, "trust me", "not a gate that may be overridden"},
		{[]string{"intervall"}, "typo", "not a gate that may be overridden"},
		{[]string{"interval"}, "two\nlines", "one line"},
	} {
		ov, err := ParseOverrides(c.names, c.reason)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v %q: %v", c.names, c.reason, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v %q: %v, want %q", c.names, c.reason, err, c.want)
		case c.want == "" && len(ov) != len(c.names):
			t.Errorf("%v: overrides %v", c.names, ov)
		}
	}
}

func TestApplyAndTrailers(t *testing.T) {
	gs := []Gate{{Name: Interval, Detail: []string{"too soon"}}, {Name: Newer, Passed: true}, {Name: Complete, Detail: []string{"no entry"}}}
	ov, _ := ParseOverrides([]string{Interval, Newer}, "hotfix")
	used := ov.Apply(gs)
	if len(used) != 1 || used[0].Name != Interval || !gs[0].Passed || gs[0].Overridden != "hotfix" {
		t.Fatalf("used %+v, gates %+v", used, gs)
	}
	if Passed(gs) || !strings.Contains(Failed(gs), "gate complete: no entry") {
		t.Errorf("complete should still fail: %s", Failed(gs))
	}
	if tr := Trailers(gs); len(tr) != 1 || tr[0] != "Kiln-Override-Gate: interval: hotfix" {
		t.Errorf("trailers %q", tr)
	}
}

func TestCheckInterval(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	week := config.Duration(7 * 24 * time.Hour)
	for _, c := range []struct {
		name      string
		min       config.Duration
		last      time.Time
		unchanged bool
		pass      bool
	}{
		{"never changed", week, time.Time{}, false, true},
		{"no interval", 0, now.Add(-time.Second), false, true},
		{"too soon", week, now.Add(-8 * time.Second), false, false},
		{"long enough", week, now.Add(-8 * 24 * time.Hour), false, true},
		{"a rerun changes nothing", week, now.Add(-8 * time.Second), true, true},
	} {
		g := CheckInterval("stable", c.min, c.last, now, c.unchanged)
		if g.Passed != c.pass {
			t.Errorf("%s: %+v", c.name, g)
		}
		if !g.Passed && !strings.Contains(g.Detail[0], "changed 8s ago") || !g.Passed && !strings.Contains(g.Detail[0], "every 7d") {
			t.Errorf("%s: detail %q", c.name, g.Detail)
		}
	}
}
