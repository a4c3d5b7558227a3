package main

import (
	"github.com/kiln-images/kiln/internal/report"

	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
)

// release runs kiln release through moto and returns the run id and the
// image it published in each region, read from the channel's manifest.
func (w *awsWorld) release(t *testing.T, channel string) released {
	t.Helper()
	out, stderr, code := w.kiln(t, "release", "ci-runner", "--channel", channel, "-o", "json")
	if code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep report.Release
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(filepath.Join(w.dir, "manifests", channel+".json"))
	if err != nil {
		t.Fatal(err)
	}
	rel := released{run: rep.Run.ID, images: map[string]cloud.Image{}}
	for _, region := range awsRegions {
		e, ok := m.Get("ci-runner", region)
		if !ok {
			t.Fatalf("no %s entry for %s", channel, region)
		}
		dep, _ := time.Parse(time.RFC3339, e.DeprecationTime)
		rel.images[region] = cloud.Image{ID: e.ID, Region: region, Name: e.Name, Deprecation: dep}
	}
	return rel
}

// stubEC2 talks to the stub, which answers what moto lacks (deprecation).
func (w *awsWorld) stubEC2(region string) *ec2.Client {
	return ec2.NewFromConfig(awstest.Config(w.stub.URL, region))
}

// image describes one image straight from moto; ok is false when it is
// gone.
func (w *awsWorld) image(t *testing.T, region, id string) (ec2types.Image, bool) {
	t.Helper()
	out, err := w.ec2(region).DescribeImages(t.Context(), &ec2.DescribeImagesInput{
		Owners: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("image-id"), Values: []string{id}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Images) == 0 {
		return ec2types.Image{}, false
	}
	return out.Images[0], true
}

// snapshotExists asks moto whether a snapshot is still there.
func (w *awsWorld) snapshotExists(t *testing.T, region, id string) bool {
	t.Helper()
	out, err := w.ec2(region).DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{
		OwnerIds: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("snapshot-id"), Values: []string{id}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Snapshots) > 0
}

// seed makes an image directly in moto, tagged at creation with tags.
func (w *awsWorld) seed(t *testing.T, region, name string, tags map[string]string) ec2types.Image {
	t.Helper()
	c := w.ec2(region)
	run, err := c.RunInstances(t.Context(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	inst := aws.ToString(run.Instances[0].InstanceId)
	var ts []ec2types.Tag
	for k, v := range tags {
		ts = append(ts, ec2types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	img, err := c.CreateImage(t.Context(), &ec2.CreateImageInput{
		InstanceId: aws.String(inst), Name: aws.String(name),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage, Tags: ts}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{inst}}); err != nil {
		t.Fatal(err)
	}
	got, ok := w.image(t, region, aws.ToString(img.ImageId))
	if !ok || len(got.BlockDeviceMappings) == 0 {
		t.Fatalf("seeded image %s: %v %+v", aws.ToString(img.ImageId), ok, got)
	}
	return got
}

// awsReleaseTags are the tags of a replicate copy of run.
func awsReleaseTags(run string) map[string]string {
	return map[string]string{
		cloud.TagManaged: "true", cloud.TagProject: "grit", cloud.TagAssetID: run, cloud.TagUseCase: "ci-runner", cloud.TagArch: "x86_64",
		cloud.TagVersion: "1.0", cloud.TagPhase: cloud.PhaseReplicate, cloud.TagTest: cloud.TestPassed,
		"deployment_name": "grit",
	}
}

// knownRun records run in the project's journal, as if this machine had
// run it and it had failed.
func knownRun(t *testing.T, cfgPath, run string) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(journalPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	now := time.Now()
	if err := j.StartRun(t.Context(), journal.Run{ID: run, UseCase: "ci-runner", Arch: "x86_64", Version: "1.0",
		Created: now, Updated: now, State: journal.RunFailed, Phase: cloud.PhaseReplicate}); err != nil {
		t.Fatal(err)
	}
}

// editConfig rewrites the world's kiln.yaml with fn.
func (w *awsWorld) editConfig(t *testing.T, fn func(string) string) {
	t.Helper()
	data, err := os.ReadFile(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.cfg, []byte(fn(string(data))), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDriftAWS(t *testing.T) {
	w := newAWSWorld(t, `{public: true, accounts: ["111122223333"], deprecate_after: 10d}`)
	ctx := t.Context()
	rel := w.release(t, "latest")

	// In sync: "findings" is an empty list, not null.
	rep, code := driftJSON(t, w.kiln, "--warn-before", "1d")
	if code != 0 || rep.Findings == nil || len(rep.Findings) != 0 || rep.Summary.Checked != 4 || rep.Summary.InSync != 4 || rep.Summary.Regions != 4 {
		t.Fatalf("drift after release: exit %d, %+v %v", code, rep.Summary, findingsOf(rep.Findings))
	}
	// Deprecated in ten days: within the default two weeks' warning.
	rep, code = driftJSON(t, w.kiln)
	if code != 0 || rep.Summary.Warnings != 4 || rep.Summary.InSync != 4 {
		t.Fatalf("drift with the default window: exit %d, %+v", code, rep.Summary)
	}

	// Behind kiln's back, with the SDK straight at moto (and at the stub
	// for deprecation, which moto lacks).
	id := func(region string) string { return rel.images[region].ID }
	if _, err := w.ec2("us-west-2").DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: aws.String(id("us-west-2"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ec2("eu-west-1").ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          aws.String(id("eu-west-1")),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Remove: []ec2types.LaunchPermission{{Group: ec2types.PermissionGroupAll}}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ec2("us-east-1").ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          aws.String(id("us-east-1")),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Remove: []ec2types.LaunchPermission{{UserId: aws.String("111122223333")}}},
	}); err != nil {
		t.Fatal(err)
	}
	moved := time.Now().UTC().Add(100 * 24 * time.Hour).Truncate(time.Minute)
	if _, err := w.stubEC2("ap-southeast-2").EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{
		ImageId: aws.String(id("ap-southeast-2")), DeprecateAt: aws.Time(moved),
	}); err != nil {
		t.Fatal(err)
	}
	// A kiln-managed image of a run this machine finished, which no
	// manifest references; and an image that only looks like kiln's.
	orphanRun := journal.NewAssetID(time.Now().Add(-time.Hour))
	knownRun(t, w.cfg, orphanRun)
	orphan := w.seed(t, "eu-west-1", "ci-runner-x86_64-0.9", awsReleaseTags(orphanRun))
	w.seed(t, "eu-west-1", "not-kilns", map[string]string{cloud.TagAssetID: orphanRun})

	dep := func(region string) string { return rfc3339(rel.images[region].Deprecation) }
	want := sortFindings([]finding{
		{"drift", "missing", "latest", "ci-runner", "us-west-2", id("us-west-2"), "available", "absent"},
		{"drift", "public", "latest", "ci-runner", "eu-west-1", id("eu-west-1"), "true", "false"},
		{"drift", "permissions", "latest", "ci-runner", "us-east-1", id("us-east-1"), "[111122223333]", "[]"},
		{"drift", "deprecation", "latest", "ci-runner", "ap-southeast-2", id("ap-southeast-2"), dep("ap-southeast-2"), rfc3339(moved)},
		{"warning", "deprecating", "latest", "ci-runner", "us-east-1", id("us-east-1"), "", dep("us-east-1")},
		{"warning", "deprecating", "latest", "ci-runner", "eu-west-1", id("eu-west-1"), "", dep("eu-west-1")},
		{"orphan", "orphan", "", "ci-runner", "eu-west-1", aws.ToString(orphan.ImageId), "", "ci-runner-x86_64-0.9"},
	})
	rep, code = driftJSON(t, w.kiln)
	if code != 1 {
		t.Fatalf("drift: exit %d, want 1", code)
	}
	diffFindings(t, "aws drift -o json", findingsOf(rep.Findings), want)
	out, _, code := w.kiln(t, "drift")
	if code != 1 || !strings.HasPrefix(out, "4 entries checked in 4 regions: 0 in sync (coverage 0.0%), 4 drift findings, 2 warnings, 1 orphans\n") {
		t.Fatalf("drift table: exit %d\n%s", code, out)
	}
	diffFindings(t, "aws drift table", tableFindings(t, out), want)

	// reconcile: plan, then apply; the deregistered image it cannot fix.
	var rr report.Reconcile
	out, _, code = w.kiln(t, "reconcile", "-o", "json")
	if err := json.Unmarshal([]byte(out), &rr); err != nil || code != 1 || rr.Applied || len(rr.Fixes) != 3 || len(rr.Unfixable) != 1 {
		t.Fatalf("reconcile plan: exit %d, %v\n%s", code, err, out)
	}
	if img, _ := w.image(t, "eu-west-1", id("eu-west-1")); aws.ToBool(img.Public) {
		t.Fatal("reconcile without --apply changed the cloud")
	}
	out, stderr, code := w.kiln(t, "reconcile", "--apply")
	if code != 1 || strings.Count(out, "fixed") != 3 || !strings.Contains(out, "cannot fix") || !strings.Contains(stderr, "need a new release or kiln rollback") {
		t.Fatalf("reconcile --apply: exit %d\n%s%s", code, out, stderr)
	}
	if img, _ := w.image(t, "eu-west-1", id("eu-west-1")); !aws.ToBool(img.Public) {
		t.Error("eu-west-1 is still private")
	}
	if at, ok := w.stub.Deprecation(id("ap-southeast-2")); !ok || !at.Equal(rel.images["ap-southeast-2"].Deprecation) {
		t.Errorf("ap-southeast-2 deprecation %v, want %v", at, rel.images["ap-southeast-2"].Deprecation)
	}
	attr, err := w.ec2("us-east-1").DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{
		ImageId: aws.String(id("us-east-1")), Attribute: ec2types.ImageAttributeNameLaunchPermission,
	})
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, p := range attr.LaunchPermissions {
		if u := aws.ToString(p.UserId); u != "" {
			users = append(users, u)
		}
	}
	if !slices.Equal(users, []string{"111122223333"}) {
		t.Errorf("us-east-1 shared with %v", users)
	}
	rep, code = driftJSON(t, w.kiln)
	if code != 1 || rep.Summary.Drifted[drift.Missing] != 1 || len(rep.Summary.Drifted) != 1 {
		t.Fatalf("drift after reconcile: exit %d, %+v", code, rep.Summary)
	}

	// A cloud error is exit 2 and names the region, not drift.
	w.faults.Fail(awstest.Rule{Service: "ec2", Region: "eu-west-1", Action: "DescribeImages", Status: 403, Code: "UnauthorizedOperation"})
	out, stderr, code = w.kiln(t, "drift")
	if code != 2 || !strings.Contains(stderr, "eu-west-1") || !strings.Contains(stderr, "UnauthorizedOperation") {
		t.Fatalf("drift with a failing region: exit %d\n%s%s", code, out, stderr)
	}
}
