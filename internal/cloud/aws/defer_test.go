package aws

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

// BuildDeferCleanup returns the image while the build's temporary
// resources still exist; the function it returns removes them.
func TestBuildDeferCleanup(t *testing.T) {
	r := newRig(t)
	awstest.SimulateGuests(t, motoServer.URL, "us-east-1")
	base := seedImage(t, r.ec2("us-east-1"), "debian-12-base", nil)
	in := buildInput(t, config.Base{AMI: *base.ImageId})

	img, cleanup, err := r.b.BuildDeferCleanup(ctxTimeout(t, time.Minute), in)
	if err != nil {
		t.Fatal(err)
	}
	if img.State != cloud.StateAvailable || cleanup == nil {
		t.Fatalf("BuildDeferCleanup = %+v, cleanup %v", img, cleanup != nil)
	}
	c := r.ec2("us-east-1")
	kp, err := c.DescribeKeyPairs(t.Context(), &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{filter("key-name", tempName(in.Token))}})
	if err != nil || len(kp.KeyPairs) != 1 {
		t.Fatalf("before cleanup: %d key pairs named %s (%v), want the build's", len(kp.KeyPairs), tempName(in.Token), err)
	}
	if n := r.stub.Calls("ec2", "TerminateInstances"); n != 0 {
		t.Errorf("the build instance was terminated before cleanup was called (%d calls)", n)
	}
	if err := cleanup(t.Context()); err != nil {
		t.Fatal(err)
	}
	assertBuilt(t, r, in, img)
}

// A rerun after a crash between the image and the cleanup returns the
// same image; its cleanup removes what the first attempt left.
func TestBuildDeferCleanupRerun(t *testing.T) {
	r := newRig(t)
	awstest.SimulateGuests(t, motoServer.URL, "us-east-1")
	base := seedImage(t, r.ec2("us-east-1"), "debian-12-base", nil)
	in := buildInput(t, config.Base{AMI: *base.ImageId})
	first, _, err := r.b.BuildDeferCleanup(ctxTimeout(t, time.Minute), in)
	if err != nil {
		t.Fatal(err)
	}
	// The first cleanup never runs: the process died.
	again, err := r.b.Build(ctxTimeout(t, time.Minute), in)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID {
		t.Errorf("rerun returned %s, the first attempt made %s", again.ID, first.ID)
	}
	if n := r.stub.Calls("ec2", "RunInstances"); n != 1 {
		t.Errorf("%d RunInstances calls, want 1", n)
	}
	assertBuilt(t, r, in, again)
}

// TestImageDeferCleanup returns once the instance is terminating; the wait
// it returns sees it gone.
func TestTestImageDeferCleanup(t *testing.T) {
	r := newRig(t)
	src := seedImage(t, r.ec2("us-east-1"), "candidate", runTags())
	r.stub.SetConsole(func(region, id string) (string, bool) { return "KILN-TEST-RESULT: PASS\n", true })
	dir := t.TempDir()
	write(t, filepath.Join(dir, "t.sh"), "#!/bin/sh\n", 0o644)
	res, wait, err := r.b.TestImageDeferCleanup(ctxTimeout(t, time.Minute), cloud.TestInput{
		Region: "us-east-1", ImageID: *src.ImageId, Tests: []string{"t.sh"}, Dir: dir,
		Tags: runTags(), Token: "defer-token", Timeout: time.Minute,
	})
	if err != nil || !res.Passed || wait == nil {
		t.Fatalf("TestImageDeferCleanup = %+v, wait set %v, %v", res, wait != nil, err)
	}
	if n := r.stub.Calls("ec2", "TerminateInstances"); n != 1 {
		t.Errorf("%d TerminateInstances calls before returning, want 1", n)
	}
	if err := wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	out, err := r.ec2("us-east-1").DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		filter("tag:"+cloud.TagToken, "defer-token")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range out.Reservations {
		for _, i := range res.Instances {
			if i.State.Name != ec2types.InstanceStateNameTerminated {
				t.Errorf("test instance %s is %s after the wait", aws.ToString(i.InstanceId), i.State.Name)
			}
		}
	}
}

// The reads that confirm an available image follow each other after the
// short confirmation pause, not the poll interval.
func TestWaitAvailableConfirmsQuickly(t *testing.T) {
	r := newRig(t)
	src := seedImage(t, r.ec2("us-east-1"), "img", nil)
	b, err := New(t.Context(), r.cfg, testRegions, WithPollInterval(2*time.Second, 10*time.Second), WithConfirmPause(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	img, err := b.WaitAvailable(t.Context(), "us-east-1", *src.ImageId)
	took := time.Since(start)
	if err != nil || img.State != cloud.StateAvailable {
		t.Fatalf("WaitAvailable = %+v, %v", img, err)
	}
	if n := r.stub.Calls("ec2", "DescribeImages"); n != defaultStableReads {
		t.Errorf("%d DescribeImages calls, want %d confirming reads", n, defaultStableReads)
	}
	// Two pauses of the poll interval would be 4 s.
	if took > 1500*time.Millisecond {
		t.Errorf("WaitAvailable took %s for an image available from the start", took)
	}
	if b.confirmPause() != 20*time.Millisecond {
		t.Errorf("confirmPause = %s", b.confirmPause())
	}
	def, err := New(t.Context(), r.cfg, testRegions, WithPollInterval(5*time.Second, 30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := def.confirmPause(); got != time.Second {
		t.Errorf("default confirmPause at poll interval 5s = %s, want 1s", got)
	}
}

// SetLaunchPermissions reuses the pipeline's fresh answer that image block
// public access is off instead of asking again; a blocked region is asked
// every time.
func TestPublicAccessAnswerReused(t *testing.T) {
	r := newRig(t)
	r.stub.SetBlockPublicAccess("eu-west-1", true)
	for _, region := range []string{"us-east-1", "eu-west-1"} {
		if _, err := r.b.PublicAccessBlocked(t.Context(), region); err != nil {
			t.Fatal(err)
		}
	}
	asked := r.stub.Calls("ec2", "GetImageBlockPublicAccessState")
	open := seedImage(t, r.ec2("us-east-1"), "open", nil)
	if err := r.b.SetLaunchPermissions(t.Context(), "us-east-1", *open.ImageId, cloud.LaunchPermissions{Public: true}); err != nil {
		t.Fatal(err)
	}
	if n := r.stub.Calls("ec2", "GetImageBlockPublicAccessState") - asked; n != 0 {
		t.Errorf("SetLaunchPermissions asked again %d times right after the check", n)
	}
	blocked := seedImage(t, r.ec2("eu-west-1"), "blocked", nil)
	if err := r.b.SetLaunchPermissions(t.Context(), "eu-west-1", *blocked.ImageId, cloud.LaunchPermissions{Public: true}); err == nil {
		t.Error("made public where image block public access is on")
	}
	if n := r.stub.Calls("ec2", "GetImageBlockPublicAccessState") - asked; n != 1 {
		t.Errorf("a blocked region was asked %d times, want once more", n)
	}
}
