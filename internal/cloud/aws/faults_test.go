package aws

import (
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

// TestReleaseUnderFaults runs build, replicate to three regions and publish
// while a fifth of all requests are throttled or answered 503, and checks
// that the retries converge on exactly one image per region.
func TestReleaseUnderFaults(t *testing.T) {
	r := newRig(t)
	awstest.SimulateGuests(t, motoServer.URL, "us-east-1")
	base := seedImage(t, r.ec2("us-east-1"), "debian-12-base", nil)
	r.faults.SetRate(0.2)
	r.faults.SetLatency(2 * time.Millisecond)
	ctx := ctxTimeout(t, 2*time.Minute)

	in := buildInput(t, config.Base{AMI: *base.ImageId})
	cand, err := r.b.Build(ctx, in)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	copies := copyAll(t, r.b, cand.ID, []string{"us-west-2", "eu-west-1"}, runTags(cloud.TagPhase, cloud.PhaseReplicate))
	if t.Failed() {
		t.FailNow()
	}
	copies["us-east-1"] = cand
	var params []cloud.Parameter
	for region, img := range copies {
		if err := r.b.SetLaunchPermissions(ctx, region, img.ID, cloud.LaunchPermissions{Public: true}); err != nil {
			t.Errorf("publish in %s: %v", region, err)
		}
		if err := r.b.SetDeprecation(ctx, region, img.ID, time.Now().AddDate(1, 0, 0)); err != nil {
			t.Errorf("deprecate in %s: %v", region, err)
		}
		params = append(params, cloud.Parameter{Region: region, Name: "/kiln/latest/ci-runner", ImageID: img.ID, Tags: runTags()})
	}
	if err := r.b.PutParameters(ctx, params); err != nil {
		t.Errorf("parameters: %v", err)
	}

	for _, region := range testRegions {
		imgs := ownImages(t, r.ec2(region))
		var ours []string
		for _, im := range imgs {
			if tagMap(im.Tags)[cloud.TagAssetID] == runTags()[cloud.TagAssetID] {
				ours = append(ours, *im.ImageId)
			}
		}
		if len(ours) != 1 || ours[0] != copies[region].ID {
			t.Errorf("%s: images %v, want exactly %s", region, ours, copies[region].ID)
		}
		if p, err := r.b.LaunchPermissions(ctx, region, copies[region].ID); err != nil || !p.Public {
			t.Errorf("%s: launch permissions %+v, %v", region, p, err)
		}
	}
	total, injected := r.faults.Counts()
	t.Logf("%d requests, %d answered with injected errors", total, injected)
	if injected < total/10 {
		t.Errorf("only %d of %d requests were faulted; the test did not test much", injected, total)
	}
}
