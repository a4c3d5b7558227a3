package deploy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// Gate is one condition of a promotion.
type Gate struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// Gate names.
const (
	GateSourceDeployed = "source-deployed" // the source's last deploy finished
	GatePath           = "path"            // the target is promoted from the source
	GateVerified       = "verified"        // the source's last verification of its release passed
	GateSoak           = "soak"            // the release ran verified in the source long enough
	GateNotLocked      = "not-locked"      // the target is not locked
	GateNotHeld        = "not-held"        // the target has no hold (a manual rollback)
	GateNotDisabled    = "not-disabled"    // the target's compute is not stopped
	GateInRegion       = "in-region"       // the release has an image in the target's region
	GateNotDeprecated  = "not-deprecated"  // that image exists and is not deprecated
	GateApproval       = "approval"        // a recorded approval of the release for the target
	GateWindow         = "window"          // now is in one of the target's windows
	GateTemplates      = "same-templates"  // the target's stack templates are those the source ran
)

// gateInput is what the gates of a promotion look at.
type gateInput struct {
	from, to  string
	src       *record.Record
	target    *config.Deployment
	targetRec *record.Record // nil: never deployed
	image     *cloud.Image   // the release's image in the target's region; nil when absent
	imageErr  error
	templates map[string]string // the target's template digests now
	liftHold  bool
	now       time.Time
}

// gates judges a promotion. Every gate is reported, passed or not.
func gates(in gateInput) []Gate {
	var out []Gate
	add := func(name string, passed bool, format string, args ...any) {
		out = append(out, Gate{Name: name, Passed: passed, Detail: fmt.Sprintf(format, args...)})
	}
	rel := in.src.Release
	pr := in.target.Promote

	if pr.From == "" || pr.From == in.from {
		add(GatePath, true, "%s may be promoted from %s", in.to, in.from)
	} else {
		add(GatePath, false, "%s is promoted from %s only (promote.from)", in.to, pr.From)
	}

	last, ok := in.src.LastVerification()
	switch {
	case !ok:
		add(GateVerified, false, "%s has never been verified (kiln verify %s)", in.from, in.from)
	case last.Release != rel.ID:
		add(GateVerified, false, "%s's last verification was of release %s, not of %s it runs now", in.from, last.Release, rel.ID)
	case last.At.Before(in.src.DeployedAt):
		add(GateVerified, false, "%s was last verified at %s, before its deploy at %s", in.from, formatTime(last.At), formatTime(in.src.DeployedAt))
	case !last.Passed:
		add(GateVerified, false, "%s's last verification, at %s, failed: %s", in.from, formatTime(last.At), failedChecks(last))
	default:
		add(GateVerified, true, "%s passed its verification at %s", in.from, formatTime(last.At))
	}

	ran := in.now.Sub(in.src.DeployedAt)
	switch soak := pr.Soak.Std(); {
	case soak == 0:
		add(GateSoak, true, "no soak time required")
	case ran >= soak:
		add(GateSoak, true, "release %s has run in %s for %s (soak %s)", rel.ID, in.from, roundDuration(ran), pr.Soak)
	default:
		add(GateSoak, false, "release %s has run in %s for %s of the %s soak; promotable from %s",
			rel.ID, in.from, roundDuration(ran), pr.Soak, formatTime(in.src.DeployedAt.Add(soak)))
	}

	tr := in.targetRec
	if tr != nil && tr.Lock != nil {
		add(GateNotLocked, false, "%s is locked by %s since %s: %s", in.to, tr.Lock.By, formatTime(tr.Lock.At), tr.Lock.Reason)
	} else {
		add(GateNotLocked, true, "%s is not locked", in.to)
	}
	switch {
	case tr != nil && tr.Hold != nil && in.liftHold:
		add(GateNotHeld, true, "the hold by %s (%s) is lifted by --lift-hold", tr.Hold.By, tr.Hold.Reason)
	case tr != nil && tr.Hold != nil:
		add(GateNotHeld, false, "%s is held since %s by %s: %s (promote with --lift-hold to lift it)", in.to, formatTime(tr.Hold.At), tr.Hold.By, tr.Hold.Reason)
	default:
		add(GateNotHeld, true, "%s has no hold", in.to)
	}
	if tr != nil && tr.State == record.StateDisabled {
		add(GateNotDisabled, false, "%s is disabled (kiln enable %s)", in.to, in.to)
	} else {
		add(GateNotDisabled, true, "%s is not disabled", in.to)
	}

	id, has := rel.Images[in.target.Region]
	switch {
	case !has:
		add(GateInRegion, false, "release %s has no image in %s (only in %s)", rel.ID, in.target.Region, strings.Join(sortedKeys(rel.Images), ", "))
		add(GateNotDeprecated, false, "no image to check")
	default:
		add(GateInRegion, true, "image %s in %s", id, in.target.Region)
		switch img := in.image; {
		case img == nil:
			add(GateNotDeprecated, false, "image %s in %s: %v", id, in.target.Region, in.imageErr)
		case img.State != cloud.StateAvailable:
			add(GateNotDeprecated, false, "image %s in %s is %s", id, in.target.Region, img.State)
		case !img.Deprecation.IsZero() && !in.now.Before(img.Deprecation):
			add(GateNotDeprecated, false, "image %s was deprecated at %s", id, formatTime(img.Deprecation))
		case img.Deprecation.IsZero():
			add(GateNotDeprecated, true, "image %s is available and has no deprecation time", id)
		default:
			add(GateNotDeprecated, true, "image %s is available until its deprecation at %s", id, formatTime(img.Deprecation))
		}
	}

	if pr.Approval {
		if a, ok := approved(tr, rel.ID); ok {
			add(GateApproval, true, "approved by %s at %s", a.By, formatTime(a.At))
		} else {
			add(GateApproval, false, "release %s is not approved for %s (kiln approve %s --release %s)", rel.ID, in.to, in.to, rel.ID)
		}
	}
	if len(pr.Windows) > 0 {
		if w, ok := inWindow(pr.Windows, in.now); ok {
			add(GateWindow, true, "now (%s) is in the window %s", formatTime(in.now), w)
		} else {
			add(GateWindow, false, "now (%s) is outside the windows %s", formatTime(in.now), describeWindows(pr.Windows))
		}
	}
	var differ []string
	for unit, sum := range in.templates {
		if was, ok := rel.Templates[unit]; ok && was != sum {
			differ = append(differ, unit)
		}
	}
	slices.Sort(differ)
	if len(differ) > 0 {
		add(GateTemplates, false, "the templates of %s differ from those %s ran; deploy them to %s first", strings.Join(differ, ", "), in.from, in.from)
	} else if len(in.templates) > 0 {
		add(GateTemplates, true, "the templates are those %s ran", in.from)
	}
	return out
}

func approved(r *record.Record, release string) (record.Approval, bool) {
	if r == nil {
		return record.Approval{}, false
	}
	return r.Approved(release)
}

func failedChecks(v record.Verification) string {
	var out []string
	for _, c := range v.Checks {
		if !c.Passed {
			out = append(out, c.Name+" ("+c.Detail+")")
		}
	}
	return strings.Join(out, "; ")
}

func roundDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return config.Duration(d.Round(time.Second)).String()
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// inWindow returns the window now is in, if any.
func inWindow(ws []config.Window, now time.Time) (string, bool) {
	for _, w := range ws {
		loc, err := time.LoadLocation(w.Timezone)
		if err != nil {
			continue
		}
		t := now.In(loc)
		if len(w.Days) > 0 && !slices.Contains(w.Days, dayNames[t.Weekday()]) {
			continue
		}
		clock := t.Format("15:04")
		start, end := w.Start, w.End
		if start == "" {
			start = "00:00"
		}
		if end == "" {
			end = "24:00"
		}
		if clock >= start && clock < end {
			return describeWindow(w), true
		}
	}
	return "", false
}

func describeWindow(w config.Window) string {
	days := "every day"
	if len(w.Days) > 0 {
		days = strings.Join(w.Days, ",")
	}
	start, end := w.Start, w.End
	if start == "" {
		start = "00:00"
	}
	if end == "" {
		end = "24:00"
	}
	return fmt.Sprintf("%s %s-%s %s", days, start, end, w.Timezone)
}

func describeWindows(ws []config.Window) string {
	var out []string
	for _, w := range ws {
		out = append(out, describeWindow(w))
	}
	return strings.Join(out, "; ")
}
