package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

// awsLeftovers lists, with direct EC2 calls to moto, everything tagged with
// run in any region that is not an image (or its snapshot) in keep.
func (w *awsWorld) leftovers(t *testing.T, run string, keep map[string]bool) []string {
	t.Helper()
	ctx := t.Context()
	byRun := []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagAssetID), Values: []string{run}}}
	var left []string
	for _, key := range w.staged(t) {
		if strings.Contains(key, "/"+run+"/") {
			left = append(left, "staged bundle "+key)
		}
	}
	for _, region := range awsRegions {
		// Through the stub, which shows registered images on the snapshots
		// they were registered from (moto does not) and unfinished uploads
		// as pending.
		c := ec2.NewFromConfig(awstest.Config(w.stub.URL, region))
		keptSnaps := map[string]bool{}
		imgs, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: byRun})
		if err != nil {
			t.Fatal(err)
		}
		for _, img := range imgs.Images {
			id := aws.ToString(img.ImageId)
			if keep[region+"/"+id] {
				for _, bd := range img.BlockDeviceMappings {
					if bd.Ebs != nil {
						keptSnaps[aws.ToString(bd.Ebs.SnapshotId)] = true
					}
				}
				continue
			}
			left = append(left, region+" image "+id)
		}
		snaps, err := c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: byRun})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range snaps.Snapshots {
			if id := aws.ToString(s.SnapshotId); !keptSnaps[id] {
				left = append(left, region+" snapshot "+id)
			}
		}
		ins, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: append(byRun, ec2types.Filter{
			Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"},
		})})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ins.Reservations {
			for _, i := range r.Instances {
				left = append(left, region+" instance "+aws.ToString(i.InstanceId))
			}
		}
		kps, err := c.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: byRun})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kps.KeyPairs {
			left = append(left, region+" key pair "+aws.ToString(k.KeyName))
		}
		sgs, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: byRun})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range sgs.SecurityGroups {
			left = append(left, region+" security group "+aws.ToString(g.GroupId))
		}
	}
	return left
}

// awsEvents counts the step boundaries of a full release in a world
// newWorld makes.
func awsEvents(t *testing.T, newWorld func(*testing.T) *awsWorld) int {
	t.Helper()
	w := newWorld(t)
	trace := filepath.Join(t.TempDir(), "trace")
	p, code := runKiln(t, []string{"KILN_FAILPOINT_LOG=" + trace}, "release", "ci-runner", "-c", w.cfg)
	if code != 0 {
		t.Fatalf("release: exit %d\n%s", code, p.stderr.String())
	}
	n := len(events(t, trace))
	if n < 20 {
		t.Fatalf("a release has only %d step boundaries", n)
	}
	return n
}

// crashStride is how many kill points the aws harness steps over at a time
// (KILN_CRASH_STRIDE, default 1: every point).
func crashStride(t *testing.T) int {
	s, err := strconv.Atoi(os.Getenv("KILN_CRASH_STRIDE"))
	if err != nil || s < 1 {
		return 1
	}
	return s
}

// awsCrashEach kills a release at each step boundary in turn (every
// crashStride-th), each time in a new world, and calls then with the
// world and the killed run; then returns what the run left behind, and did
// says what then does, for the report of leftovers.
func awsCrashEach(t *testing.T, variant, did string, newWorld func(*testing.T) *awsWorld, then func(t *testing.T, w *awsWorld, i int, run string) []string) {
	n := awsEvents(t, newWorld)
	tally := crashTally{backend: "aws (moto)", variant: variant}
	defer tally.report(t)
	for i := 1; i <= n; i += crashStride(t) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			w := newWorld(t)
			p, code := runKiln(t, []string{"KILN_FAILPOINT=" + strconv.Itoa(i)}, "release", "ci-runner", "-c", w.cfg)
			if code != -1 {
				t.Fatalf("kiln was not killed at boundary %d (exit %d)\n%s", i, code, p.stderr.String())
			}
			run := runID(t, p)
			tally.points++
			if left := then(t, w, i, run); len(left) > 0 {
				tally.leaked += len(left)
				t.Errorf("after %s a kill at boundary %d: %v", did, i, left)
			}
		})
	}
}

// instanceWorld is the aws world of the crash harness's instance builds.
func instanceWorld(t *testing.T) *awsWorld { return newAWSWorld(t, "{public: true}") }

// uploadWorld builds with method upload from a given disk (build.disk),
// so that every kill point costs seconds, not a build: the local build of
// a disk is the local builder's, killed and resumed by the local harness.
func uploadWorld(t *testing.T) *awsWorld { return newAWSUploadWorld(t, "{public: true}") }

func crashCleanup(t *testing.T, w *awsWorld, i int, run string) []string {
	w.stub.Settle(t)
	cp, code := runKiln(t, nil, "cleanup", "--run", run, "--apply", "-c", w.cfg)
	if code != 0 {
		t.Errorf("cleanup after a kill at boundary %d: exit %d\n%s%s", i, code, cp.stdout.String(), cp.stderr.String())
	}
	return w.leftovers(t, run, referenced(t, w.dir))
}

func crashResume(t *testing.T, w *awsWorld, i int, run string) []string {
	w.stub.Settle(t)
	rp, code := runKiln(t, nil, "release", "--resume", run, "-c", w.cfg)
	if code != 0 {
		t.Fatalf("resume after a kill at boundary %d: exit %d\n%s", i, code, rp.stderr.String())
	}
	keep := referenced(t, w.dir)
	var left []string
	for _, region := range awsRegions {
		imgs := w.images(t, region, run)
		if len(imgs) != 1 || !keep[region+"/"+aws.ToString(imgs[0].ImageId)] {
			left = append(left, fmt.Sprintf("%s: %d images of the run", region, len(imgs)))
		}
	}
	return append(left, w.leftovers(t, run, keep)...)
}

func TestAWSCrashCleanup(t *testing.T) {
	awsCrashEach(t, "kill, then cleanup --run ID --apply", "cleanup of", instanceWorld, crashCleanup)
}

func TestAWSCrashResume(t *testing.T) {
	awsCrashEach(t, "kill, then release --resume ID", "resuming", instanceWorld, crashResume)
}

func TestAWSCrashUploadCleanup(t *testing.T) {
	awsCrashEach(t, "build method upload: kill, then cleanup --run ID --apply", "cleanup of", uploadWorld, crashCleanup)
}

func TestAWSCrashUploadResume(t *testing.T) {
	awsCrashEach(t, "build method upload: kill, then release --resume ID", "resuming", uploadWorld, crashResume)
}
