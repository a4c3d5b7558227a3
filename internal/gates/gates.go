// Package gates holds the conditions a write to a channel must meet, and
// their recorded overrides.
//
// Every writer of a channel — publish, release (and the scheduler) and
// promote — checks the channel's gates before it changes anything: the
// interval since the channel last changed (min_interval in kiln.yaml) and
// that the run is not older than what the channel holds. promote adds
// gates on the entries it copies. A failed gate refuses the write unless
// it is overridden by name with a reason (--override-gate NAME --reason
// TEXT), which is recorded in the journal and the commit message.
package gates

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/config"
)

// Gate is one condition a write to a channel must meet.
type Gate struct {
	Name   string   `json:"name"`
	Passed bool     `json:"passed"`
	Detail []string `json:"detail,omitempty"` // what failed, one line per entry
	// Overridden holds the reason given for letting a failed gate pass.
	Overridden string `json:"overridden,omitempty"`
}

// Names of the gates.
const (
	Complete      = "complete"       // every target region has an entry
	Available     = "available"      // every image exists and is available
	Tested        = "tested"         // every image's run passed kiln test
	Published     = "published"      // public or shared as the policy says
	NotDeprecated = "not-deprecated" // no image is deprecated
	Interval      = "interval"       // the channel changed long enough ago
	Newer         = "newer"          // the run is not older than what the channel holds
)

// overridable are the gates a reason may override. Tested and available
// may not: nothing untested or absent is ever published.
var overridable = []string{Complete, Published, NotDeprecated, Interval, Newer}

// Overrides maps the gates to let pass, should they fail, to the reason.
type Overrides map[string]string

// ParseOverrides checks --override-gate names and --reason: each name must
// be a gate that may be overridden, and a reason must be given with them
// (and only with them).
func ParseOverrides(names []string, reason string) (Overrides, error) {
	reason = strings.TrimSpace(reason)
	if len(names) == 0 {
		if reason != "" {
			return nil, fmt.Errorf("--reason goes with --override-gate")
		}
		return nil, nil
	}
	if reason == "" {
		return nil, fmt.Errorf("--override-gate needs --reason TEXT: why the gate may be passed over (it is recorded in the journal and the commit message)")
	}
	if strings.ContainsFunc(reason, func(r rune) bool { return r < ' ' && r != '\t' }) {
		return nil, fmt.Errorf("--reason: one line of text, without control characters")
	}
	ov := Overrides{}
	for _, n := range names {
		if !slices.Contains(overridable, n) {
			return nil, fmt.Errorf("--override-gate %q: not a gate that may be overridden; these may: %s (tested and available never)",
				n, strings.Join(overridable, ", "))
		}
		ov[n] = reason
	}
	return ov, nil
}

// Apply marks each failed gate that ov overrides as passed, with the reason,
// and returns the gates overridden this way.
func (ov Overrides) Apply(gs []Gate) []Gate {
	var used []Gate
	for i := range gs {
		if why, ok := ov[gs[i].Name]; ok && !gs[i].Passed {
			gs[i].Passed, gs[i].Overridden = true, why
			used = append(used, gs[i])
		}
	}
	return used
}

// Passed reports whether every gate passed (or was overridden).
func Passed(gs []Gate) bool {
	for _, g := range gs {
		if !g.Passed {
			return false
		}
	}
	return true
}

// Failed lists the gates that did not pass, each with its detail, for an
// error message.
func Failed(gs []Gate) string {
	var lines []string
	for _, g := range gs {
		if g.Passed {
			continue
		}
		lines = append(lines, "gate "+g.Name+": "+strings.Join(g.Detail, "; "))
	}
	return strings.Join(lines, "\n")
}

// Trailers are the commit message lines that record overridden gates.
func Trailers(gs []Gate) []string {
	var out []string
	for _, g := range gs {
		if g.Overridden != "" {
			out = append(out, "Kiln-Override-Gate: "+g.Name+": "+g.Overridden)
		}
	}
	sort.Strings(out)
	return out
}

// CheckInterval is the interval gate of a write to channel, which may
// change at most once every min: last is when it last changed (zero:
// never), now the time of the write. A write that changes nothing passes
// (unchanged).
func CheckInterval(channel string, min config.Duration, last, now time.Time, unchanged bool) Gate {
	g := Gate{Name: Interval, Passed: true}
	if min <= 0 || last.IsZero() || unchanged || now.Sub(last) >= min.Std() {
		return g
	}
	g.Passed = false
	g.Detail = []string{fmt.Sprintf("channel %s changed %s ago (at %s); min_interval allows one change every %s",
		channel, config.Duration(now.Sub(last).Round(time.Second)), last.UTC().Format(time.RFC3339), min)}
	return g
}
