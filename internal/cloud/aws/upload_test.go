package aws

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ebs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/cloud/aws/ebsupload"
	"github.com/kiln-images/kiln/internal/config"
)

// stubEC2 reads EC2 through the stub, which shows registered images as
// RegisterImage asked (moto ignores the mapping) and unfinished EBS direct
// snapshots as pending.
func (r *rig) stubEC2(region string) *ec2.Client {
	return ec2.NewFromConfig(awstest.Config(r.stub.URL, region))
}

// uploadDiskFile writes a sparse 64 MiB disk with random data in a few
// places, a block of zeros written as data, and holes elsewhere; it
// returns the path and the digests of the blocks that hold data.
func uploadDiskFile(t *testing.T, dir string) (string, map[int32][sha256.Size]byte) {
	t.Helper()
	p := filepath.Join(dir, "disk.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(64 << 20)
	for _, off := range []int64{0, 3 << 20, 3<<20 + ebsupload.BlockSize, 40 << 20, 64<<20 - 4096} {
		data := make([]byte, 4096)
		rand.Read(data)
		f.WriteAt(data, off)
	}
	f.WriteAt(make([]byte, ebsupload.BlockSize), 20<<20)
	want := map[int32][sha256.Size]byte{}
	whole, _ := os.ReadFile(p)
	for i := 0; i < len(whole); i += ebsupload.BlockSize {
		block := whole[i : i+ebsupload.BlockSize]
		if !bytes.Equal(block, make([]byte, ebsupload.BlockSize)) {
			want[int32(i/ebsupload.BlockSize)] = sha256.Sum256(block)
		}
	}
	return p, want
}

func uploadInput(t *testing.T) (cloud.BuildInput, map[int32][sha256.Size]byte) {
	t.Helper()
	dir := t.TempDir()
	_, blocks := uploadDiskFile(t, dir)
	return cloud.BuildInput{
		Region:   "us-east-1",
		Regions:  testRegions,
		Name:     "ci-runner-x86_64-kiln-20261121-abc123",
		Arch:     "x86_64",
		UseCase:  &config.UseCase{Name: "ci-runner", Build: config.Build{Method: config.BuildUpload, Disk: "disk.raw"}},
		Dir:      dir,
		StateDir: filepath.Join(dir, ".kiln"),
		Tags:     runTags(),
		Token:    cloud.Token("kiln-20261121-abc123", "build", "us-east-1"),
	}, blocks
}

// A build with method upload writes the disk into a snapshot in every
// region, with no instance, key pair or security group, and registers the
// candidate from the build region's snapshot; a copy to another region
// registers that region's snapshot instead of copying.
func TestBuildUpload(t *testing.T) {
	r := newRig(t)
	in, want := uploadInput(t)

	img, err := r.b.Build(ctxTimeout(t, 2*time.Minute), in)
	if err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"RunInstances", "CreateKeyPair", "CreateSecurityGroup", "CreateImage", "CopyImage"} {
		if n := r.stub.Calls("ec2", action); n != 0 {
			t.Errorf("%d %s calls; an upload makes none", n, action)
		}
	}
	if n := r.stub.Calls("ebs", "PutSnapshotBlock"); n != len(want)*len(testRegions) {
		t.Errorf("%d PutSnapshotBlock calls, want %d blocks x %d regions (zero blocks and holes left out)", n, len(want), len(testRegions))
	}
	snaps := map[string]string{}
	for _, region := range testRegions {
		c := r.stubEC2(region)
		out, err := c.DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []ec2types.Filter{filter("tag:"+cloud.TagToken, uploadToken(in.Token, region))}})
		if err != nil || len(out.Snapshots) != 1 {
			t.Fatalf("%s: %v snapshots of the upload, %v", region, out, err)
		}
		s := out.Snapshots[0]
		id := aws.ToString(s.SnapshotId)
		snaps[region] = id
		tags := tagMap(s.Tags)
		if s.State != ec2types.SnapshotStateCompleted || tags[cloud.TagAssetID] != in.Tags[cloud.TagAssetID] || tags[tagUpload] == "" || tags[cloud.TagPhase] != cloud.PhaseBuild {
			t.Errorf("%s: snapshot %s %s, tags %v", region, id, s.State, tags)
		}
		got, completed := r.stub.SnapshotBlocks(id)
		if !completed || !maps.Equal(got, want) {
			t.Errorf("%s: snapshot %s holds %d blocks (completed %v); the disk has %d with data; same bytes: %v",
				region, id, len(got), completed, len(want), maps.Equal(got, want))
		}
	}
	raw := describeOne(t, r.stubEC2("us-east-1"), img.ID)
	if raw.BootMode != ec2types.BootModeValuesUefi || raw.Architecture != ec2types.ArchitectureValuesX8664 || !aws.ToBool(raw.EnaSupport) ||
		aws.ToString(raw.RootDeviceName) != uploadRootDevice || !slices.Equal(snapshotIDs(raw), []string{snaps["us-east-1"]}) {
		t.Errorf("candidate %s: boot %s arch %s ena %v root %s snapshots %v", img.ID, raw.BootMode, raw.Architecture, aws.ToBool(raw.EnaSupport), aws.ToString(raw.RootDeviceName), snapshotIDs(raw))
	}
	if miss := missingTags(tagMap(raw.Tags), withTags(in.Tags, map[string]string{cloud.TagToken: in.Token, cloud.TagPhase: cloud.PhaseBuild})); len(miss) > 0 {
		t.Errorf("candidate lacks tags %v", miss)
	}
	regs := r.stub.Requests("ec2", "RegisterImage")
	if len(regs) != 1 || regs[0].Form.Get("TagSpecification.1.ResourceType") != "image" || regs[0].Form.Get("BootMode") != "uefi" || regs[0].Form.Get("EnaSupport") != "true" {
		t.Errorf("RegisterImage: %d calls, first %v", len(regs), regs)
	}

	// Rerun: the same candidate, nothing uploaded again.
	again, err := r.b.Build(ctxTimeout(t, time.Minute), in)
	if err != nil || again.ID != img.ID || r.stub.Calls("ebs", "StartSnapshot") != len(testRegions) {
		t.Errorf("rerun: %s (first %s), %v; %d StartSnapshot", again.ID, img.ID, err, r.stub.Calls("ebs", "StartSnapshot"))
	}

	// Copies: in another region the uploaded snapshot is registered; in
	// the build region the candidate is copied in place.
	for _, region := range []string{"us-west-2", "us-east-1"} {
		tags := withTags(runTags(), map[string]string{cloud.TagPhase: cloud.PhaseReplicate})
		cp, err := r.b.CopyImage(t.Context(), cloud.CopyInput{
			SourceRegion: "us-east-1", SourceID: img.ID, Region: region, Name: "ci-runner-1.0",
			Tags: tags, Token: cloud.Token("kiln-20261121-abc123", "replicate", region), SourceTags: img.Tags,
		})
		if err != nil {
			t.Fatal(err)
		}
		raw := describeOne(t, r.stubEC2(region), cp.ID)
		if region == "us-west-2" && !slices.Equal(snapshotIDs(raw), []string{snaps[region]}) {
			t.Errorf("%s: copy %s stands on %v, want the uploaded %s", region, cp.ID, snapshotIDs(raw), snaps[region])
		}
		if miss := missingTags(tagMap(raw.Tags), tags); len(miss) > 0 {
			t.Errorf("%s: copy lacks tags %v", region, miss)
		}
	}
	if n := r.stub.Calls("ec2", "CopyImage"); n != 1 {
		t.Errorf("%d CopyImage calls, want 1 (the build region's)", n)
	}
}

// A rerun after a crash mid-upload deletes the unfinished snapshot and
// writes the region again, keeps a completed snapshot of the same disk,
// and replaces one of another disk.
func TestBuildUploadResumes(t *testing.T) {
	r := newRig(t)
	in, want := uploadInput(t)
	d, err := ebsupload.Scan(filepath.Join(in.Dir, "disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	start := func(region, sum string) string {
		tags := withTags(in.Tags, map[string]string{cloud.TagToken: uploadToken(in.Token, region), tagUpload: sum, cloud.TagPhase: cloud.PhaseBuild})
		out, err := ebs.NewFromConfig(awstest.Config(r.stub.URL, region)).StartSnapshot(t.Context(), &ebs.StartSnapshotInput{VolumeSize: aws.Int64(1), Tags: ebsTags(tags)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.SnapshotId)
	}
	c, _ := r.b.clients.region("us-east-1")
	// us-east-1: killed mid-upload (pending, two blocks written).
	pending := start("us-east-1", d.Checksum())
	part := ebsupload.Disk{Path: d.Path, Size: d.Size, Blocks: d.Blocks[:2]}
	res := ebsupload.Upload(t.Context(), part, []ebsupload.Target{{Region: "us-east-1", SnapshotID: pending, API: &noComplete{c.ebs}}}, ebsupload.Options{})
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	// us-west-2: finished.
	cw, _ := r.b.clients.region("us-west-2")
	done := start("us-west-2", d.Checksum())
	if res := ebsupload.Upload(t.Context(), d, []ebsupload.Target{{Region: "us-west-2", SnapshotID: done, API: cw.ebs}}, ebsupload.Options{}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	// eu-west-1: a finished snapshot of another disk.
	ce, _ := r.b.clients.region("eu-west-1")
	other := start("eu-west-1", "another-disk")
	if res := ebsupload.Upload(t.Context(), part, []ebsupload.Target{{Region: "eu-west-1", SnapshotID: other, API: ce.ebs}}, ebsupload.Options{}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if st := describeSnapshot(t, r, "us-east-1", pending).State; st != ec2types.SnapshotStatePending {
		t.Fatalf("the interrupted snapshot shows %s, want pending", st)
	}
	before := r.stub.Calls("ebs", "StartSnapshot")

	if _, err := r.b.Build(ctxTimeout(t, 2*time.Minute), in); err != nil {
		t.Fatal(err)
	}
	if n := r.stub.Calls("ebs", "StartSnapshot") - before; n != 2 {
		t.Errorf("%d snapshots started on the rerun, want 2 (us-east-1 and eu-west-1)", n)
	}
	for _, region := range testRegions {
		out, err := r.stubEC2(region).DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []ec2types.Filter{filter("tag:"+cloud.TagAssetID, in.Tags[cloud.TagAssetID])}})
		if err != nil || len(out.Snapshots) != 1 {
			t.Fatalf("%s: %d snapshots of the run, want 1: %v", region, len(out.Snapshots), err)
		}
		id := aws.ToString(out.Snapshots[0].SnapshotId)
		if region == "us-west-2" && id != done {
			t.Errorf("the completed snapshot %s was replaced by %s", done, id)
		}
		if got, completed := r.stub.SnapshotBlocks(id); !completed || !maps.Equal(got, want) {
			t.Errorf("%s: snapshot %s is not the disk (completed %v)", region, id, completed)
		}
	}
}

// noComplete passes block writes on and never completes: an upload killed
// before CompleteSnapshot.
type noComplete struct{ ebsupload.API }

func (n *noComplete) CompleteSnapshot(ctx context.Context, in *ebs.CompleteSnapshotInput, _ ...func(*ebs.Options)) (*ebs.CompleteSnapshotOutput, error) {
	return &ebs.CompleteSnapshotOutput{}, nil
}

func describeSnapshot(t *testing.T, r *rig, region, id string) ec2types.Snapshot {
	t.Helper()
	out, err := r.stubEC2(region).DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil || len(out.Snapshots) != 1 {
		t.Fatalf("describe snapshot %s: %v", id, err)
	}
	return out.Snapshots[0]
}
