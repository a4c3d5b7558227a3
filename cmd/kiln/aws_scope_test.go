package main

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/report"
)

// TestDeletionIsScopedToTheProjectAWS: project grit shares its account
// with project team-b and with images an older kiln made. cleanup and
// prune delete grit's own only; a grit snapshot that someone registered
// an image of their own from is kept while the grit image goes; adopt
// makes the legacy image grit's.
func TestDeletionIsScopedToTheProjectAWS(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	rel := w.release(t, "latest")
	for region, img := range rel.images {
		got, _ := w.image(t, region, img.ID)
		if tagsOf(got.Tags)[cloud.TagProject] != "grit" {
			t.Fatalf("the release copy in %s is not tagged %s=grit: %v", region, cloud.TagProject, tagsOf(got.Tags))
		}
	}
	run := func() string { return journal.NewAssetID(time.Now().Add(-3 * time.Hour)) }
	ours := w.seed(t, "us-west-2", "grit-orphan", awsReleaseTags(run()))
	teamB := w.seed(t, "us-west-2", "team-b-release", withTags(awsReleaseTags(run()), map[string]string{cloud.TagProject: "team-b"}))
	legacyTags := awsReleaseTags(run())
	delete(legacyTags, cloud.TagProject)
	legacy := w.seed(t, "eu-west-1", "legacy-release", legacyTags)
	retained := w.seed(t, "eu-west-1", "retained", withTags(awsReleaseTags(run()), map[string]string{cloud.TagRetain: "True"}))
	shared := w.seed(t, "us-east-1", "grit-shared", awsReleaseTags(run()))
	snap := snapshotOf(shared)
	// Through the stub: moto forgets the snapshot a registered image names.
	theirs, err := w.stubEC2("us-east-1").RegisterImage(t.Context(), &ec2.RegisterImageInput{
		Name: aws.String("theirs-from-grit-snapshot"), RootDeviceName: aws.String("/dev/sda1"),
		BlockDeviceMappings: []ec2types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sda1"), Ebs: &ec2types.EbsBlockDevice{SnapshotId: aws.String(snap)}}},
	})
	if err != nil {
		t.Fatal(err)
	}

	out, stderr, code := w.kiln(t, "cleanup", "--orphans", "--apply", "--force-recent", "--yes", "-o", "json")
	_, items := planOf(t, out)
	if code != 0 {
		t.Fatalf("cleanup --orphans: exit %d\n%s%s", code, out, stderr)
	}
	for _, c := range []struct {
		region, id string
		action     assets.Action
		reason     string
		stays      bool
	}{
		{"us-west-2", aws.ToString(ours.ImageId), assets.Delete, "", false},
		{"us-west-2", aws.ToString(teamB.ImageId), assets.Foreign, "another project's (kiln:project=team-b)", true},
		{"eu-west-1", aws.ToString(legacy.ImageId), assets.Foreign, "no kiln:project tag", true},
		{"eu-west-1", aws.ToString(retained.ImageId), assets.Retain, "kiln:retain=True", true},
		{"us-east-1", aws.ToString(shared.ImageId), assets.Delete, "", false},
		{"us-east-1", snap, assets.Protect, "in use by image " + aws.ToString(theirs.ImageId), true},
	} {
		it := items[c.id]
		if it.Action != c.action || !strings.Contains(it.Reason, c.reason) {
			t.Errorf("%s: %s (%s), want %s (%s)", c.id, it.Action, it.Reason, c.action, c.reason)
		}
		exists := false
		if strings.HasPrefix(c.id, "snap-") {
			exists = w.snapshotExists(t, c.region, c.id)
		} else {
			_, exists = w.image(t, c.region, c.id)
		}
		if exists != c.stays {
			t.Errorf("%s: exists %v after cleanup, want %v", c.id, exists, c.stays)
		}
	}
	if _, ok := w.image(t, "us-east-1", aws.ToString(theirs.ImageId)); !ok {
		t.Error("the image registered from a grit snapshot is gone")
	}

	// prune: team-b's and the legacy images neither go nor count.
	if out, stderr, code := w.kiln(t, "prune", "--keep", "1", "--apply", "--yes"); code != 0 {
		t.Fatalf("prune: exit %d\n%s%s", code, out, stderr)
	}
	for region, img := range map[string]ec2types.Image{"us-west-2": teamB, "eu-west-1": legacy} {
		if _, ok := w.image(t, region, aws.ToString(img.ImageId)); !ok {
			t.Errorf("prune deleted %s in %s, which is not grit's", aws.ToString(img.ImageId), region)
		}
	}

	// adopt makes the legacy image grit's; cleanup then takes it.
	out, stderr, code = w.kiln(t, "adopt", "--apply", "-o", "json")
	if code != 0 || !strings.Contains(out, aws.ToString(legacy.ImageId)) {
		t.Fatalf("adopt: exit %d\n%s%s", code, out, stderr)
	}
	if ad := checkSchema(t, report.SchemaAdopt, out); ad["applied"] != true {
		t.Errorf("adopt --apply: applied %v", ad["applied"])
	}
	got, _ := w.image(t, "eu-west-1", aws.ToString(legacy.ImageId))
	if tagsOf(got.Tags)[cloud.TagProject] != "grit" {
		t.Fatalf("adopted image tags %v", tagsOf(got.Tags))
	}
	if _, _, code := w.kiln(t, "cleanup", "--orphans", "--apply", "--force-recent", "--yes"); code != 0 {
		t.Fatalf("cleanup after adopt: exit %d", code)
	}
	if _, ok := w.image(t, "eu-west-1", aws.ToString(legacy.ImageId)); ok {
		t.Error("the adopted orphan was kept")
	}
	if _, ok := w.image(t, "us-west-2", aws.ToString(teamB.ImageId)); !ok {
		t.Error("team-b's image was deleted after adopt")
	}
}
