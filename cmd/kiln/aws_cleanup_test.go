package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/lockfile"
	"github.com/kiln-images/kiln/internal/pipeline"
)

// allImages lists every image and snapshot the account owns in every
// region, straight from moto, for checking that nothing changed.
func (w *awsWorld) allImages(t *testing.T) []string {
	t.Helper()
	var all []string
	for _, region := range awsRegions {
		c := w.ec2(region)
		imgs, err := c.DescribeImages(t.Context(), &ec2.DescribeImagesInput{Owners: []string{"self"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range imgs.Images {
			all = append(all, fmt.Sprintf("%s %s public=%v tags=%d", region, aws.ToString(im.ImageId), aws.ToBool(im.Public), len(im.Tags)))
		}
		snaps, err := c.DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range snaps.Snapshots {
			all = append(all, region+" "+aws.ToString(s.SnapshotId))
		}
	}
	slices.Sort(all)
	return all
}

func snapshotOf(im ec2types.Image) string {
	for _, m := range im.BlockDeviceMappings {
		if m.Ebs != nil && aws.ToString(m.Ebs.SnapshotId) != "" {
			return aws.ToString(m.Ebs.SnapshotId)
		}
	}
	return ""
}

func TestCleanupSafetyAWS(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	published := w.release(t, "latest")

	// What the rules are about, each made directly in moto.
	foreignRun := journal.NewAssetID(time.Now().Add(-3 * time.Hour))
	foreign := w.seed(t, "us-east-1", "theirs", map[string]string{cloud.TagAssetID: foreignRun, cloud.TagPhase: cloud.PhaseReplicate})
	finished := journal.NewAssetID(time.Now().Add(-2 * time.Hour))
	knownRun(t, w.cfg, finished)
	retained := w.seed(t, "us-west-2", "kept", withTags(awsReleaseTags(finished), map[string]string{cloud.TagRetain: "true"}))
	doomed := w.seed(t, "us-west-2", "doomed", awsReleaseTags(finished))
	locked := journal.NewAssetID(time.Now().Add(-2 * time.Hour))
	knownRun(t, w.cfg, locked)
	busy := w.seed(t, "eu-west-1", "busy", awsReleaseTags(locked))
	unknown := journal.NewAssetID(time.Now().Add(-time.Minute))
	young := w.seed(t, "ap-southeast-2", "young", awsReleaseTags(unknown))

	// Another account's credentials: refused before anything is listed.
	before := w.allImages(t)
	w.editConfig(t, func(s string) string {
		return strings.Replace(s, `allowed_accounts: ["123456789012"]`, `allowed_accounts: ["999999999999"]`, 1)
	})
	for _, args := range [][]string{
		{"cleanup", "--orphans", "--apply", "--force-recent", "--yes"},
		{"cleanup", "--run", finished, "--apply", "--force-recent", "--yes"},
		{"prune", "--keep", "1", "--apply", "--yes"},
		{"reconcile", "--apply"},
	} {
		_, stderr, code := w.kiln(t, args...)
		if code != 2 || !strings.Contains(stderr, "account 123456789012") || !strings.Contains(stderr, "refusing to act") {
			t.Errorf("%v for another account: exit %d: %s", args, code, stderr)
		}
	}
	if after := w.allImages(t); !slices.Equal(before, after) {
		t.Fatalf("a refused command changed the account:\nbefore %v\nafter  %v", before, after)
	}
	w.editConfig(t, func(s string) string {
		return strings.Replace(s, `allowed_accounts: ["999999999999"]`, `allowed_accounts: ["123456789012"]`, 1)
	})

	// The plan says what happens to each, and changes nothing.
	lock := (&pipeline.Pipeline{Config: w.config(t)}).RunLockPath(locked)
	unlock, ok, err := lockfile.TryLock(lock)
	if err != nil || !ok {
		t.Fatalf("lock %s: %v %v", lock, ok, err)
	}
	out, stderr, code := w.kiln(t, "cleanup", "--orphans", "-o", "json")
	_, items := planOf(t, out)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, stderr)
	}
	expect := map[string]struct {
		action assets.Action
		reason string
	}{
		aws.ToString(doomed.ImageId):   {assets.Delete, ""},
		snapshotOf(doomed):             {assets.Delete, ""},
		aws.ToString(retained.ImageId): {assets.Retain, "kiln:retain=true"},
		snapshotOf(retained):           {assets.Retain, "belongs to image " + aws.ToString(retained.ImageId) + " (retain)"},
		aws.ToString(busy.ImageId):     {assets.Skip, "a kiln process on this machine is working on it"},
		aws.ToString(young.ImageId):    {assets.Skip, "unknown to this machine's journal and active"},
	}
	for _, img := range published.images {
		expect[img.ID] = struct {
			action assets.Action
			reason string
		}{assets.Protect, "referenced by manifests/latest.json"}
	}
	for id, e := range expect {
		it, ok := items[id]
		if !ok || it.Action != e.action || !strings.HasPrefix(it.Reason, e.reason) {
			t.Errorf("%s: %s (%s), want %s (%s...)", id, it.Action, it.Reason, e.action, e.reason)
		}
	}
	if _, ok := items[aws.ToString(foreign.ImageId)]; ok {
		t.Errorf("the plan includes an image without kiln:managed=true")
	}
	if after := w.allImages(t); !slices.Equal(before, after) {
		t.Fatal("a plan changed the account")
	}

	// --older-than 1h: everything here is minutes old.
	out, _, code = w.kiln(t, "cleanup", "--orphans", "--older-than", "1h", "--apply", "-o", "json")
	rep, _ := planOf(t, out)
	if code != 0 || rep.Summary["delete"] != 0 || !slices.Equal(before, w.allImages(t)) {
		t.Fatalf("--older-than 1h: exit %d\n%s", code, out)
	}

	// Apply: only the doomed image and its snapshot go.
	out, stderr, code = w.kiln(t, "cleanup", "--orphans", "--apply", "-o", "json")
	rep, _ = planOf(t, out)
	if code != 0 || !rep.Applied || rep.Unplanned != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	if _, ok := w.image(t, "us-west-2", aws.ToString(doomed.ImageId)); ok || w.snapshotExists(t, "us-west-2", snapshotOf(doomed)) {
		t.Errorf("doomed image or its snapshot is still there")
	}
	for _, im := range []ec2types.Image{foreign, retained, busy, young} {
		region := map[string]string{
			aws.ToString(foreign.ImageId): "us-east-1", aws.ToString(retained.ImageId): "us-west-2",
			aws.ToString(busy.ImageId): "eu-west-1", aws.ToString(young.ImageId): "ap-southeast-2",
		}[aws.ToString(im.ImageId)]
		if _, ok := w.image(t, region, aws.ToString(im.ImageId)); !ok || !w.snapshotExists(t, region, snapshotOf(im)) {
			t.Errorf("%s %s (%s) or its snapshot was deleted", region, aws.ToString(im.ImageId), aws.ToString(im.Name))
		}
	}
	for region, img := range published.images {
		if _, ok := w.image(t, region, img.ID); !ok {
			t.Errorf("published image %s %s was deleted", region, img.ID)
		}
	}

	// The lock released and --force given, the rest of the unprotected goes.
	unlock()
	if out, stderr, code := w.kiln(t, "cleanup", "--orphans", "--apply", "--force-recent"); code != 0 {
		t.Fatalf("cleanup --force: exit %d\n%s%s", code, out, stderr)
	}
	if _, ok := w.image(t, "eu-west-1", aws.ToString(busy.ImageId)); ok {
		t.Error("the unlocked run's image is still there")
	}
	if _, ok := w.image(t, "ap-southeast-2", aws.ToString(young.ImageId)); ok || w.snapshotExists(t, "ap-southeast-2", snapshotOf(young)) {
		t.Error("--force left the young unknown run's image or snapshot")
	}
	if _, ok := w.image(t, "us-west-2", aws.ToString(retained.ImageId)); !ok {
		t.Error("--force deleted a retained image")
	}
	if _, ok := w.image(t, "us-east-1", aws.ToString(foreign.ImageId)); !ok {
		t.Error("--force deleted an unmanaged image")
	}

	// confirm_above: more than it without --yes and no terminal is an error
	// that deletes nothing.
	w.editConfig(t, func(s string) string { return s + "cleanup: {confirm_above: 1}\n" })
	many := journal.NewAssetID(time.Now().Add(-2 * time.Hour))
	knownRun(t, w.cfg, many)
	a := w.seed(t, "us-east-1", "many-a", awsReleaseTags(many))
	b := w.seed(t, "us-west-2", "many-b", awsReleaseTags(many))
	_, stderr, code = w.kiln(t, "cleanup", "--run", many, "--apply")
	if code != 2 || !strings.Contains(stderr, "more than cleanup.confirm_above = 1") {
		t.Fatalf("above confirm_above: exit %d: %s", code, stderr)
	}
	if _, ok := w.image(t, "us-east-1", aws.ToString(a.ImageId)); !ok {
		t.Fatal("deleted without confirmation")
	}
	if _, stderr, code := w.kiln(t, "cleanup", "--run", many, "--apply", "--yes"); code != 0 {
		t.Fatalf("--yes: exit %d: %s", code, stderr)
	}
	for region, im := range map[string]ec2types.Image{"us-east-1": a, "us-west-2": b} {
		if _, ok := w.image(t, region, aws.ToString(im.ImageId)); ok || w.snapshotExists(t, region, snapshotOf(im)) {
			t.Errorf("%s: %s or its snapshot survived cleanup --yes", region, aws.ToString(im.ImageId))
		}
	}
}

func TestPruneAWS(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	ctx := t.Context()
	// Prune ranks releases by image creation time, which moto gives in
	// whole seconds: each release starts in a second of its own, or two
	// that take less than a second would tie.
	nextSecond := func() { time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second))) }
	r1 := w.release(t, "stable")
	nextSecond()
	r2 := w.release(t, "latest")
	nextSecond()
	r3 := w.release(t, "latest")

	// Something still uses r2 in two regions.
	run, err := w.ec2("us-west-2").RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String(r2.images["us-west-2"].ID), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	instance := aws.ToString(run.Instances[0].InstanceId)
	if _, err := w.ec2("eu-west-1").CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("fleet"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(r2.images["eu-west-1"].ID)},
	}); err != nil {
		t.Fatal(err)
	}
	snaps := map[string]string{} // image id -> snapshot
	for _, rel := range []released{r1, r2, r3} {
		for region, img := range rel.images {
			im, ok := w.image(t, region, img.ID)
			if !ok || snapshotOf(im) == "" {
				t.Fatalf("%s %s: no image or snapshot", region, img.ID)
			}
			snaps[img.ID] = snapshotOf(im)
		}
	}

	out, stderr, code := w.kiln(t, "prune", "--keep", "1", "-o", "json")
	_, items := planOf(t, out)
	if code != 0 {
		t.Fatalf("prune plan: exit %d\n%s%s", code, out, stderr)
	}
	want := map[string][2]string{}
	for _, img := range r1.images {
		want[img.ID] = [2]string{"protect", "referenced by manifests/stable.json"}
		want[snaps[img.ID]] = [2]string{"protect", "belongs to image " + img.ID}
	}
	for _, img := range r3.images {
		want[img.ID] = [2]string{"protect", "retention (newest 1 of 1)"}
	}
	for region, img := range r2.images {
		switch region {
		case "us-west-2":
			want[img.ID] = [2]string{"protect", "in use by instance " + instance + " (running)"}
		case "eu-west-1":
			want[img.ID] = [2]string{"protect", "in use by launch template fleet"}
		default:
			want[img.ID] = [2]string{"delete", ""}
			want[snaps[img.ID]] = [2]string{"delete", ""}
		}
	}
	for id, wt := range want {
		it := items[id]
		if string(it.Action) != wt[0] || !strings.HasPrefix(it.Reason, wt[1]) {
			t.Errorf("%s: %s (%s), want %s (%s...)", id, it.Action, it.Reason, wt[0], wt[1])
		}
	}

	// --older-than: all of it is minutes old.
	out, _, code = w.kiln(t, "prune", "--keep", "1", "--older-than", "1h", "--apply", "-o", "json")
	if rep, _ := planOf(t, out); code != 0 || rep.Summary["delete"] != 0 {
		t.Fatalf("prune --older-than 1h: exit %d\n%s", code, out)
	}
	for region, img := range r2.images {
		if _, ok := w.image(t, region, img.ID); !ok {
			t.Fatalf("--older-than 1h deleted %s %s", region, img.ID)
		}
	}

	out, stderr, code = w.kiln(t, "prune", "--keep", "1", "--apply", "-o", "json")
	rep, _ := planOf(t, out)
	if code != 0 || !rep.Applied || rep.Unplanned != 0 {
		t.Fatalf("prune --apply: exit %d\n%s%s", code, out, stderr)
	}
	var deleted []string
	for _, r := range rep.Results {
		if r.Outcome == assets.Deleted {
			deleted = append(deleted, string(r.Asset.Kind)+" "+r.Asset.Region)
		}
	}
	slices.Sort(deleted)
	if wantDeleted := []string{"image ap-southeast-2", "image us-east-1", "snapshot ap-southeast-2", "snapshot us-east-1"}; !slices.Equal(deleted, wantDeleted) {
		t.Errorf("deleted %v, want %v", deleted, wantDeleted)
	}
	for region, img := range r2.images {
		_, ok := w.image(t, region, img.ID)
		snap := w.snapshotExists(t, region, snaps[img.ID])
		inUse := region == "us-west-2" || region == "eu-west-1"
		if ok != inUse || snap != inUse {
			t.Errorf("r2 in %s: image there %v, snapshot there %v, in use %v", region, ok, snap, inUse)
		}
	}
	for _, rel := range []released{r1, r3} {
		for region, img := range rel.images {
			if _, ok := w.image(t, region, img.ID); !ok || !w.snapshotExists(t, region, snaps[img.ID]) {
				t.Errorf("kept image %s %s or its snapshot is gone", region, img.ID)
			}
		}
	}

	// Once the instance is gone, so is the image it used.
	if _, err := w.ec2("us-west-2").TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{instance}}); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := w.kiln(t, "prune", "--keep", "1", "--apply"); code != 0 {
		t.Fatalf("second prune: exit %d\n%s%s", code, out, stderr)
	}
	if _, ok := w.image(t, "us-west-2", r2.images["us-west-2"].ID); ok {
		t.Error("the image of a terminated instance was kept")
	}
	if _, ok := w.image(t, "eu-west-1", r2.images["eu-west-1"].ID); !ok {
		t.Error("the launch template's image was deleted")
	}
	if rep, code := driftJSON(t, w.kiln); code != 0 || rep.Summary.InSync != 8 || rep.Summary.Checked != 8 {
		t.Errorf("drift after prune: exit %d %+v", code, rep.Summary)
	}
}

// config loads the world's kiln.yaml.
func (w *awsWorld) config(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCleanupOlderThanUndatedAWS: a security group has no creation time; with
// --older-than it counts as old as its run, so a young run's group stays
// with the run's image instead of being deleted from under it.
func TestCleanupOlderThanUndatedAWS(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	ctx := t.Context()
	run := journal.NewAssetID(time.Now().Add(-10 * time.Minute))
	knownRun(t, w.cfg, run)
	img := w.seed(t, "us-east-1", "candidate", withTags(awsReleaseTags(run), map[string]string{cloud.TagPhase: cloud.PhaseBuild}))
	c := w.ec2("us-east-1")
	var ts []ec2types.Tag
	for k, v := range withTags(awsReleaseTags(run), map[string]string{cloud.TagPhase: cloud.PhaseBuild}) {
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	sg, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName: aws.String("kiln-build-" + run), Description: aws.String("kiln build"),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeSecurityGroup, Tags: ts}},
	})
	if err != nil {
		t.Fatal(err)
	}
	group := aws.ToString(sg.GroupId)
	groupExists := func() bool {
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
			Filters: []ec2types.Filter{{Name: aws.String("group-id"), Values: []string{group}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.SecurityGroups) == 1
	}

	out, stderr, code := w.kiln(t, "cleanup", "--run", run, "--older-than", "1h", "--apply", "-o", "json")
	rep, items := planOf(t, out)
	if code != 0 || rep.Summary["delete"] != 0 {
		t.Fatalf("cleanup --older-than 1h: exit %d\n%s%s", code, out, stderr)
	}
	for _, id := range []string{group, aws.ToString(img.ImageId)} {
		if it, ok := items[id]; !ok || it.Action != assets.Skip {
			t.Errorf("%s: %s (%s), want skip", id, it.Action, it.Reason)
		}
	}
	if !groupExists() {
		t.Fatal("--older-than 1h deleted the security group of a 10 minute old run")
	}
	if out, stderr, code := w.kiln(t, "cleanup", "--run", run, "--apply"); code != 0 || groupExists() {
		t.Fatalf("cleanup without --older-than: exit %d, group still there %v\n%s%s", code, groupExists(), out, stderr)
	}
	if _, ok := w.image(t, "us-east-1", aws.ToString(img.ImageId)); ok {
		t.Fatal("image still there")
	}
}
