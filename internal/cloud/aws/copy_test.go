package aws

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

// copyAll copies src to every region concurrently, as the pipeline does.
func copyAll(t *testing.T, b *Backend, src string, regions []string, tags map[string]string) map[string]cloud.Image {
	t.Helper()
	var (
		mu  sync.Mutex
		out = map[string]cloud.Image{}
		wg  sync.WaitGroup
	)
	for _, region := range regions {
		wg.Go(func() {
			img, err := b.CopyImage(t.Context(), cloud.CopyInput{
				SourceRegion: "us-east-1", SourceID: src, Region: region,
				Name: "ci-runner-x86_64-1.0", Description: "ci runner",
				Tags: tags, Token: cloud.Token("kiln-20261121-abc123", "replicate", region),
			})
			if err != nil {
				t.Errorf("CopyImage to %s: %v", region, err)
				return
			}
			if img, err = b.WaitAvailable(t.Context(), region, img.ID); err != nil {
				t.Errorf("WaitAvailable in %s: %v", region, err)
				return
			}
			mu.Lock()
			out[region] = img
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func TestCopyToThreeRegions(t *testing.T) {
	r := newRig(t)
	src := seedImage(t, r.ec2("us-east-1"), "ci-runner-candidate", runTags())
	tags := runTags(cloud.TagPhase, cloud.PhaseReplicate)
	regions := []string{"us-west-2", "eu-west-1", "us-east-1"}

	first := copyAll(t, r.b, *src.ImageId, regions, tags)
	if t.Failed() {
		t.FailNow()
	}
	for _, region := range regions {
		img := first[region]
		if img.ID == "" || img.ID == *src.ImageId || img.State != cloud.StateAvailable || img.Region != region {
			t.Errorf("%s: copy %+v", region, img)
			continue
		}
		// Check the tags with the SDK directly, on the image and its snapshots.
		c := r.ec2(region)
		raw := describeOne(t, c, img.ID)
		want := withTags(tags, map[string]string{cloud.TagSource: *src.ImageId, cloud.TagToken: cloud.Token("kiln-20261121-abc123", "replicate", region)})
		if miss := missingTags(tagMap(raw.Tags), want); len(miss) > 0 {
			t.Errorf("%s: image %s lacks tags %v", region, img.ID, miss)
		}
		if len(snapshotIDs(raw)) == 0 {
			t.Errorf("%s: image %s has no snapshots", region, img.ID)
		}
		for _, snap := range snapshotIDs(raw) {
			if miss := missingTags(snapshotTags(t, c, snap), want); len(miss) > 0 {
				t.Errorf("%s: snapshot %s lacks tags %v", region, snap, miss)
			}
		}
		if aws.ToString(raw.Name) != "ci-runner-x86_64-1.0" {
			t.Errorf("%s: name %q", region, aws.ToString(raw.Name))
		}
	}

	// The tags came with CopyImage (the stub applies them as EC2 does):
	// no CreateTags.
	if n := r.stub.Calls("ec2", "CreateTags"); n != 0 {
		t.Errorf("%d CreateTags calls, want none", n)
	}
	if n := r.stub.Calls("ec2", "DescribeSnapshots"); n != 0 {
		t.Errorf("%d DescribeSnapshots calls, want none", n)
	}

	// A rerun with the same tokens returns the same images and copies nothing.
	calls := r.stub.Calls("ec2", "CopyImage")
	if calls != 3 {
		t.Errorf("CopyImage called %d times, want 3", calls)
	}
	again := copyAll(t, r.b, *src.ImageId, regions, tags)
	for _, region := range regions {
		if again[region].ID != first[region].ID {
			t.Errorf("%s: rerun returned %s, first run %s", region, again[region].ID, first[region].ID)
		}
		copies := ownImages(t, r.ec2(region), filter("name", "ci-runner-x86_64-1.0"))
		if len(copies) != 1 {
			t.Errorf("%s: %d images named ci-runner-x86_64-1.0 after a rerun, want 1", region, len(copies))
		}
	}
	if got := r.stub.Calls("ec2", "CopyImage"); got != calls {
		t.Errorf("rerun called CopyImage %d more times", got-calls)
	}
}

func TestCopyNameTakenByAnotherRun(t *testing.T) {
	r := newRig(t)
	src := seedImage(t, r.ec2("us-east-1"), "candidate", runTags())
	other := seedImage(t, r.ec2("us-west-2"), "release-1.0", runTags(cloud.TagToken, "another-token"))
	// moto does not enforce unique names; AWS answers like this.
	r.faults.Fail(awstest.Rule{Service: "ec2", Region: "us-west-2", Action: "CopyImage", Status: 400, Code: "InvalidAMIName.Duplicate"})
	_, err := r.b.CopyImage(t.Context(), cloud.CopyInput{SourceRegion: "us-east-1", SourceID: *src.ImageId, Region: "us-west-2",
		Name: "release-1.0", Tags: runTags(), Token: "my-token"})
	if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), *other.ImageId) {
		t.Errorf("CopyImage onto a taken name: %v, want ErrInvalid naming %s", err, *other.ImageId)
	}
}

func TestCopyEncryptedUsesRegionKey(t *testing.T) {
	key := "arn:aws:kms:us-west-2:123456789012:key/kiln-test"
	r := newRig(t, withConfig(func(c *config.AWSBackend) { c.KMSKeys = map[string]string{"us-west-2": key} }))
	src := seedImage(t, r.ec2("us-east-1"), "candidate", runTags())
	for _, region := range []string{"us-west-2", "eu-west-1"} {
		if _, err := r.b.CopyImage(t.Context(), cloud.CopyInput{SourceRegion: "us-east-1", SourceID: *src.ImageId,
			Region: region, Name: "copy", Tags: runTags(), Token: "tok-" + region}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range r.stub.Requests("ec2", "CopyImage") {
		region, enc, kms := c.Region, c.Form.Get("Encrypted"), c.Form.Get("KmsKeyId")
		switch {
		case region == "us-west-2" && (enc != "true" || kms != key):
			t.Errorf("copy to us-west-2: Encrypted=%q KmsKeyId=%q, want true and %s", enc, kms, key)
		case region == "eu-west-1" && (enc != "" || kms != ""):
			t.Errorf("copy to eu-west-1 (no key configured): Encrypted=%q KmsKeyId=%q", enc, kms)
		}
		if got := c.Form.Get("ClientToken"); got != "tok-"+region {
			t.Errorf("copy to %s: ClientToken %q, want the token", region, got)
		}
	}
	if n := len(r.stub.Requests("ec2", "CopyImage")); n != 2 {
		t.Errorf("%d CopyImage requests, want 2", n)
	}
}

// An endpoint that drops CopyImage's tags (moto itself): each copy and its
// snapshots get them in one CreateTags, without reading the snapshots.
func TestCopyTagFallback(t *testing.T) {
	r := newRig(t)
	r.stub.DropCopyImageTags(true)
	src := seedImage(t, r.ec2("us-east-1"), "ci-runner-candidate", runTags())
	tags := runTags(cloud.TagPhase, cloud.PhaseReplicate)
	regions := []string{"us-west-2", "eu-west-1"}
	out := copyAll(t, r.b, *src.ImageId, regions, tags)
	for _, region := range regions {
		c := r.ec2(region)
		raw := describeOne(t, c, out[region].ID)
		if miss := missingTags(tagMap(raw.Tags), tags); len(miss) > 0 {
			t.Errorf("%s: image lacks tags %v", region, miss)
		}
		for _, snap := range snapshotIDs(raw) {
			if miss := missingTags(snapshotTags(t, c, snap), tags); len(miss) > 0 {
				t.Errorf("%s: snapshot %s lacks tags %v", region, snap, miss)
			}
		}
	}
	if n := r.stub.Calls("ec2", "CreateTags"); n != len(regions) {
		t.Errorf("%d CreateTags calls, want one per copy (%d)", n, len(regions))
	}
	if n := r.stub.Calls("ec2", "DescribeSnapshots"); n != 0 {
		t.Errorf("%d DescribeSnapshots calls, want none", n)
	}
}
