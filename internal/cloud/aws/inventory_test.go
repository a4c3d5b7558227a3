package aws

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// inventoryWorld makes one asset of every kind in us-east-1, tagged with
// tags, plus decoys that must not be listed; it returns the expected
// assets as "kind id parent retain" lines.
func inventoryWorld(t *testing.T, r *rig, tags map[string]string) []string {
	t.Helper()
	ctx := t.Context()
	c, _ := r.b.clients.region("us-east-1")
	direct := r.ec2("us-east-1")
	var want []string
	add := func(kind cloud.Kind, id, parent string, retain bool) {
		want = append(want, fmt.Sprintf("%s %s %s %v", kind, id, parent, retain))
	}

	// Build resources: key pair, security group, instance with its volume.
	token := "inventory-token"
	temp := withTags(tags, map[string]string{cloud.TagPhase: cloud.PhaseBuild, cloud.TagToken: token})
	instID, err := r.b.startBuildInstance(ctx, c, instanceSpec{ImageID: "ami-12c6146b", InstanceType: "t3.micro",
		UserData: "IyEvYmluL3NoCg==", Tags: temp, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	add(cloud.KindInstance, instID, "", false)
	add(cloud.KindKeyPair, tempName(token), "", false)
	gid, _, _ := groupByName(ctx, c, tempName(token))
	add(cloud.KindSecurityGroup, gid, "", false)
	insts, _ := describeInstances(ctx, c, nil, instID)
	vol := aws.ToString(insts[0].BlockDeviceMappings[0].Ebs.VolumeId)
	add(cloud.KindVolume, vol, instID, false)

	// An image with its (untagged) snapshot.
	img := seedImage(t, direct, "candidate", tags)
	add(cloud.KindImage, *img.ImageId, "", false)
	add(cloud.KindSnapshot, snapshotIDs(img)[0], *img.ImageId, false)

	// A stack: a tagged instance and a security group it keeps on delete.
	tmpl, _ := json.Marshal(map[string]any{"Resources": map[string]any{
		"Kept": map[string]any{"Type": "AWS::EC2::SecurityGroup", "DeletionPolicy": "Retain",
			"Properties": map[string]any{"GroupDescription": "kept", "GroupName": "kiln-kept"}},
		"Box": map[string]any{"Type": "AWS::EC2::Instance", "Properties": map[string]any{"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}},
	}})
	var cfnTags []cfntypes.Tag
	for k, v := range tags {
		cfnTags = append(cfnTags, cfntypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if _, err := r.cfn("us-east-1").CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("kiln-inv"),
		TemplateBody: aws.String(string(tmpl)), Tags: cfnTags}); err != nil {
		t.Fatal(err)
	}
	res, err := stackResources(ctx, c, "kiln-inv")
	if err != nil {
		t.Fatal(err)
	}
	add(cloud.KindStack, "kiln-inv", "", false)
	for _, rs := range res {
		switch aws.ToString(rs.LogicalResourceId) {
		case "Kept":
			add(cloud.KindSecurityGroup, aws.ToString(rs.PhysicalResourceId), "kiln-inv", true)
		case "Box":
			add(cloud.KindInstance, aws.ToString(rs.PhysicalResourceId), "kiln-inv", false)
			// moto's stack instances have no volumes; AWS's would be listed too.
			bi, _ := describeInstances(ctx, c, nil, aws.ToString(rs.PhysicalResourceId))
			for _, m := range bi[0].BlockDeviceMappings {
				add(cloud.KindVolume, aws.ToString(m.Ebs.VolumeId), aws.ToString(rs.PhysicalResourceId), false)
			}
		}
	}

	// A channel parameter and an export.
	if err := r.b.PutParameters(ctx, []cloud.Parameter{{Region: "us-east-1", Name: "/kiln/latest/ci", ImageID: *img.ImageId, Tags: tags}}); err != nil {
		t.Fatal(err)
	}
	add(cloud.KindParameter, "/kiln/latest/ci", "", false)
	makeBucket(t, r, "us-east-1", "kiln-exports")
	exp, err := r.b.ExportImage(ctx, cloud.ExportInput{Region: "us-east-1", ImageID: *img.ImageId, Format: "raw", Tags: tags, Token: "exp"})
	if err != nil {
		t.Fatal(err)
	}
	add(cloud.KindExport, exp.Location, "", false)

	// Decoys: a terminated tagged instance (the tag index still lists it)
	// and untagged or differently tagged resources.
	dead, err := r.b.runInstance(ctx, c, instanceSpec{ImageID: "ami-12c6146b", InstanceType: "t3.micro", Tags: tags, Token: "dead"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{dead}}); err != nil {
		t.Fatal(err)
	}
	seedImage(t, direct, "someone-else", map[string]string{cloud.TagManaged: "true", cloud.TagAssetID: "other-run"})
	seedImage(t, direct, "untagged", nil)
	sort.Strings(want)
	return want
}

func assetLines(as []cloud.Asset) []string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s %s %s %v", a.Kind, a.ID, a.Parent, a.Retain))
	}
	sort.Strings(out)
	return out
}

func TestListAndDeleteAssets(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.AWSBackend) { c.ExportBucket = "kiln-exports" }))
	tags := runTags()
	want := inventoryWorld(t, r, tags)
	f := cloud.Filter{Tags: map[string]string{cloud.TagAssetID: tags[cloud.TagAssetID]}}

	got, err := r.b.ListAssets(t.Context(), "us-east-1", f)
	if err != nil {
		t.Fatal(err)
	}
	if lines := assetLines(got); !slices.Equal(lines, want) {
		t.Fatalf("ListAssets:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	for _, a := range got {
		if a.Region != "us-east-1" || (a.Parent == "" && !cloud.Match(a.Tags, f.Tags)) {
			t.Errorf("asset %+v", a)
		}
	}
	// Listed in cleanup order.
	order := map[cloud.Kind]int{}
	for i, k := range cloud.DeleteOrder {
		order[k] = i
	}
	if !slices.IsSortedFunc(got, func(a, b cloud.Asset) int { return order[a.Kind] - order[b.Kind] }) {
		t.Error("assets are not in delete order")
	}
	if other, _ := r.b.ListAssets(t.Context(), "us-west-2", f); len(other) != 0 {
		t.Errorf("us-west-2 lists %v", assetLines(other))
	}
	if byID, _ := r.b.ListAssets(t.Context(), "us-east-1", cloud.Filter{Tags: f.Tags, IDs: []string{"kiln-inv"}}); len(byID) != 1 {
		t.Errorf("ListAssets by id: %v", assetLines(byID))
	}

	// Dependencies hold: a snapshot while its image is registered, a group
	// while AWS still reports a dependency.
	for _, a := range got {
		if a.Kind == cloud.KindSnapshot {
			if err := r.b.DeleteAsset(t.Context(), a); !errors.Is(err, cloud.ErrNotYet) {
				t.Errorf("delete snapshot of a registered image: %v, want ErrNotYet", err)
			}
		}
	}
	r.stub.FailDeleteSecurityGroup(1)
	for _, a := range got {
		if a.Kind == cloud.KindSecurityGroup && !a.Retain {
			if err := r.b.DeleteAsset(t.Context(), a); !errors.Is(err, cloud.ErrNotYet) {
				t.Errorf("delete security group with a dependency: %v, want ErrNotYet", err)
			}
		}
	}

	// In delete order everything goes, each exactly once; again is a no-op.
	for _, a := range got {
		if err := r.b.DeleteAsset(t.Context(), a); err != nil {
			t.Errorf("DeleteAsset(%s %s): %v", a.Kind, a.ID, err)
		}
	}
	left, err := r.b.ListAssets(t.Context(), "us-east-1", f)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("left after deleting everything:\n%s", strings.Join(assetLines(left), "\n"))
	}
	for _, a := range got {
		if err := r.b.DeleteAsset(t.Context(), a); err != nil {
			t.Errorf("deleting absent %s %s: %v, want success", a.Kind, a.ID, err)
		}
	}
	if err := r.b.DeleteAsset(t.Context(), cloud.Asset{Kind: cloud.KindBuild, ID: "x", Region: "us-east-1"}); !errors.Is(err, cloud.ErrInvalid) {
		t.Errorf("delete a local-only kind: %v, want ErrInvalid", err)
	}
}

func TestListAssetsWithoutExportBucket(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.AWSBackend) { c.ExportBucket = "never-made" }))
	img := seedImage(t, r.ec2("us-east-1"), "x", runTags())
	got, err := r.b.ListAssets(t.Context(), "us-east-1", cloud.Filter{Tags: runTags()})
	if err != nil {
		t.Fatalf("ListAssets with a missing export bucket: %v", err)
	}
	if len(got) != 2 || got[0].ID != *img.ImageId {
		t.Errorf("assets %v, want the image and its snapshot", assetLines(got))
	}
}

// The inventory's steps run at once: an instance a stack made, listed by
// the stack (its resource status) and by EC2 (its own state), ends with
// its own state and its stack as parent whichever answered first.
func TestInventoryMergeOrder(t *testing.T) {
	own := cloud.Asset{Kind: cloud.KindInstance, ID: "i-1", State: "running", Tags: map[string]string{"k": "v"}}
	fromStack := cloud.Asset{Kind: cloud.KindInstance, ID: "i-1", State: "CREATE_COMPLETE", Parent: "kiln-app"}
	for _, stackFirst := range []bool{true, false} {
		inv := &inventory{c: &regional{loc: "us-east-1"}, assets: map[assetKey]*cloud.Asset{}, stackState: map[assetKey]bool{}}
		if stackFirst {
			inv.addStackResource(fromStack)
			inv.add(own)
		} else {
			inv.add(own)
			inv.addStackResource(fromStack)
		}
		got := *inv.assets[assetKey{cloud.KindInstance, "i-1"}]
		if got.State != "running" || got.Parent != "kiln-app" || got.Tags["k"] != "v" || got.Region != "us-east-1" {
			t.Errorf("stack first %v: %+v", stackFirst, got)
		}
	}
	// A stack resource nothing else describes keeps its stack's view.
	inv := &inventory{c: &regional{loc: "us-east-1"}, assets: map[assetKey]*cloud.Asset{}, stackState: map[assetKey]bool{}}
	inv.addStackResource(fromStack)
	inv.add(cloud.Asset{Kind: cloud.KindInstance, ID: "i-1"})
	if got := inv.assets[assetKey{cloud.KindInstance, "i-1"}].State; got != "CREATE_COMPLETE" {
		t.Errorf("state %q, want the stack's view", got)
	}
}
