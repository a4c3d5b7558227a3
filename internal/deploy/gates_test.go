package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// The gates one by one, with a fixed clock: each case changes one thing
// of a promotion that passes every gate and names the gate that fails.
func TestGates(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC) // a Wednesday
	base := func() gateInput {
		src := record.New("dev", "demo", "r1", "0")
		src.State = record.StateDeployed
		src.Release = &record.Release{ID: "1.0-aaaa", Images: map[string]string{"r1": "img-1", "r2": "img-2"}, Templates: map[string]string{"app": "sha256:x"}}
		src.DeployedAt = now.Add(-2 * time.Hour)
		src.AddVerification(record.Verification{At: now.Add(-time.Hour), Release: "1.0-aaaa", Passed: true})
		target := &config.Deployment{Name: "prod", Region: "r2", Promote: config.Promotion{
			From: "dev", Soak: config.Duration(time.Hour), Approval: true,
			Windows: []config.Window{{Days: []string{"wed"}, Start: "09:00", End: "17:00", Timezone: "UTC"}},
		}}
		tr := record.New("prod", "demo", "r2", "0")
		tr.AddApproval(record.Approval{Release: "1.0-aaaa", By: "boss", At: now})
		return gateInput{
			from: "dev", to: "prod", src: src, target: target, targetRec: tr, now: now,
			image:     &cloud.Image{ID: "img-2", State: cloud.StateAvailable, Deprecation: now.Add(30 * 24 * time.Hour)},
			templates: map[string]string{"app": "sha256:x"},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*gateInput)
		gate   string
		detail string
	}{
		{"all pass", func(*gateInput) {}, "", ""},
		{"other source", func(in *gateInput) { in.from = "qa" }, GatePath, "prod is promoted from dev only"},
		{"never verified", func(in *gateInput) { in.src.Verifications = nil }, GateVerified, "has never been verified"},
		{"verification failed", func(in *gateInput) {
			in.src.AddVerification(record.Verification{At: in.now.Add(-time.Minute), Release: "1.0-aaaa", Checks: []record.CheckResult{{Name: "version", Detail: "wrong"}}})
		}, GateVerified, "failed: version (wrong)"},
		{"verified before the deploy", func(in *gateInput) { in.src.DeployedAt = in.now.Add(-30 * time.Minute) }, GateVerified, "before its deploy"},
		{"verified another release", func(in *gateInput) { in.src.Verifications[0].Release = "0.9-bbbb" }, GateVerified, "was of release 0.9-bbbb"},
		{"soak", func(in *gateInput) { in.target.Promote.Soak = config.Duration(3 * time.Hour) }, GateSoak, "for 2h of the 3h soak; promotable from 2026-11-25T13:00:00Z"},
		{"locked", func(in *gateInput) { in.targetRec.Lock = &record.Mark{By: "ann", Reason: "freeze"} }, GateNotLocked, "locked by ann"},
		{"held", func(in *gateInput) { in.targetRec.Hold = &record.Mark{By: "ann", Reason: "rolled back"} }, GateNotHeld, "--lift-hold"},
		{"disabled", func(in *gateInput) { in.targetRec.State = record.StateDisabled }, GateNotDisabled, "disabled"},
		{"no image in the region", func(in *gateInput) { delete(in.src.Release.Images, "r2") }, GateInRegion, "has no image in r2"},
		{"deprecated", func(in *gateInput) { in.image.Deprecation = in.now.Add(-time.Second) }, GateNotDeprecated, "was deprecated at 2026-11-25T11:59:59Z"},
		{"image gone", func(in *gateInput) { in.image, in.imageErr = nil, cloud.ErrNotFound }, GateNotDeprecated, "not found"},
		{"not approved", func(in *gateInput) { in.targetRec.Approvals = nil }, GateApproval, "kiln approve prod --release 1.0-aaaa"},
		{"approved another release", func(in *gateInput) { in.targetRec.Approvals[0].Release = "0.9" }, GateApproval, "not approved"},
		{"never deployed target, approval needed", func(in *gateInput) { in.targetRec = nil }, GateApproval, "not approved"},
		{"outside the hours", func(in *gateInput) { in.now = in.now.Add(6 * time.Hour) }, GateWindow, "outside the windows wed 09:00-17:00 UTC"},
		{"another day", func(in *gateInput) { in.now = in.now.Add(24 * time.Hour) }, GateWindow, "outside"},
		{"end is exclusive", func(in *gateInput) { in.now = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC) }, GateWindow, "outside"},
		{"in another zone", func(in *gateInput) {
			in.target.Promote.Windows[0].Timezone = "Asia/Tokyo" // 12:00 UTC is 21:00 there
		}, GateWindow, "outside"},
		{"templates changed", func(in *gateInput) { in.templates["app"] = "sha256:y" }, GateTemplates, "the templates of app differ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base()
			tc.change(&in)
			var failed []Gate
			for _, g := range gates(in) {
				if !g.Passed {
					failed = append(failed, g)
				}
			}
			if tc.gate == "" {
				if len(failed) > 0 {
					t.Fatalf("failed: %+v", failed)
				}
				return
			}
			if len(failed) == 0 || failed[0].Name != tc.gate || !strings.Contains(failed[0].Detail, tc.detail) {
				t.Fatalf("failed gates %+v; want %s with %q", failed, tc.gate, tc.detail)
			}
		})
	}
	// --lift-hold passes the hold gate.
	in := base()
	in.targetRec.Hold, in.liftHold = &record.Mark{By: "ann", Reason: "rolled back"}, true
	for _, g := range gates(in) {
		if !g.Passed {
			t.Errorf("with --lift-hold: %+v", g)
		}
	}
}
