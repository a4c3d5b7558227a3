package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

// releaseCopies counts, straight from moto, the release copies of the use
// case in each region (any run), by name.
func (w *awsWorld) releaseCopies(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, region := range awsRegions {
		imgs, err := w.ec2(region).DescribeImages(t.Context(), &ec2.DescribeImagesInput{
			Owners:  []string{"self"},
			Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagPhase), Values: []string{cloud.PhaseReplicate}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range imgs.Images {
			out[region] = append(out[region], aws.ToString(im.ImageId)+" "+aws.ToString(im.Name))
		}
	}
	return out
}

// TestConcurrentReleasesAWS: two `kiln release` of one use case started
// together, as from two CI runners: one releases, the other is refused
// before it makes anything (the channel's claim in the cloud); one image
// per region.
func TestConcurrentReleasesAWS(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	// Copies take a while, so that the releases overlap whatever the
	// machine's speed.
	w.faults.Fail(awstest.Rule{Service: "ec2", Action: "CopyImage", Delay: 2 * time.Second})
	a := startKiln(t, nil, "release", "ci-runner", "-c", w.cfg)
	b := startKiln(t, nil, "release", "ci-runner", "-c", w.cfg)
	ca, cb := a.wait(), b.wait()
	won, lost := a, b
	if ca != 0 {
		won, lost = b, a
	}
	if won.code != 0 || lost.code != 2 || !strings.Contains(lost.stderr.String(), "is being written by run") {
		t.Fatalf("exits %d and %d\n--- a\n%s\n--- b\n%s", ca, cb, a.stderr.String(), b.stderr.String())
	}
	for region, imgs := range w.releaseCopies(t) {
		if len(imgs) != 1 {
			t.Errorf("%s: %d release images %v, want 1", region, len(imgs), imgs)
		}
	}
	if left := w.leftovers(t, runID(t, lost), nil); len(left) > 0 {
		t.Errorf("the refused release left %v", left)
	}
	if left := w.leftovers(t, runID(t, won), referenced(t, w.dir)); len(left) > 0 {
		t.Errorf("the release left %v", left)
	}
}

// TestConcurrentResumesAWS: a release killed half-way is resumed twice at
// once from two state directories (two machines with the same checkout):
// both hold the run's claim, and EC2's client tokens and unique image
// names make them converge on one image per region.
func TestConcurrentResumesAWS(t *testing.T) {
	for _, at := range []string{"begin build build", "begin replicate copy"} {
		t.Run(at, func(t *testing.T) {
			w := newAWSWorld(t, "{public: true}")
			p, code := runKiln(t, []string{"KILN_FAILPOINT=~" + at}, "release", "ci-runner", "-c", w.cfg)
			if code != -1 {
				t.Fatalf("kiln was not killed at %q (exit %d)\n%s", at, code, p.stderr.String())
			}
			run := runID(t, p)
			// A second checkout state: same project, its own journal.
			data, _ := os.ReadFile(w.cfg)
			second := filepath.Join(w.dir, "kiln-second.yaml")
			os.WriteFile(second, append(data, []byte("state: .kiln-second\n")...), 0o644)
			w.faults.Fail(awstest.Rule{Service: "ec2", Action: "CopyImage", Delay: 500 * time.Millisecond})
			a := startKiln(t, nil, "release", "--resume", run, "-c", w.cfg)
			b := startKiln(t, nil, "release", "--resume", run, "-c", second)
			ca, cb := a.wait(), b.wait()
			t.Logf("resumes exited %d and %d", ca, cb)
			if ca != 0 && cb != 0 {
				t.Fatalf("neither resume finished: %d, %d\n--- a\n%s\n--- b\n%s", ca, cb, a.stderr.String(), b.stderr.String())
			}
			for _, region := range awsRegions {
				if imgs := w.images(t, region, run); len(imgs) != 1 {
					var names []string
					for _, im := range imgs {
						names = append(names, fmt.Sprintf("%s %s %v", aws.ToString(im.ImageId), aws.ToString(im.Name), tagsOf(im.Tags)[cloud.TagPhase]))
					}
					t.Errorf("%s: %d images of the run: %v", region, len(imgs), names)
				}
			}
			if left := w.leftovers(t, run, referenced(t, w.dir)); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}
