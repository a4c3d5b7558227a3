package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/report"
)

// distAccount is the distribution account of TestAWSPublishAccount.
const distAccount = "210987654321"

// distEC2 is a client acting in the distribution account, straight to
// moto, for the test's own checks.
func (w *awsWorld) distEC2(t *testing.T, region string) *ec2.Client {
	t.Helper()
	return ec2.NewFromConfig(awstest.AccountConfig(t, motoServer.URL, region, distAccount))
}

// runImages lists the images of a run in region of the account c acts in.
func runImages(t *testing.T, c *ec2.Client, run string) []ec2types.Image {
	t.Helper()
	out, err := c.DescribeImages(t.Context(), &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagAssetID), Values: []string{run}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Images
}

// A use case built in one account and published from another: kiln
// assumes a role in the distribution account, shares the candidate with
// it, copies there, and everything after — manifest, drift, reconcile,
// assets, cleanup — happens there. The build account keeps nothing.
func TestAWSPublishAccount(t *testing.T) {
	w := newAWSWorld(t, "{public: true, deprecate_after: 180d}")
	w.editConfig(t, func(s string) string {
		s = strings.Replace(s, `allowed_accounts: ["`+awstest.Account+`"]`,
			`allowed_accounts: ["`+awstest.Account+`", "`+distAccount+`"]
    publish_accounts:
      - role_arn: arn:aws:iam::`+distAccount+`:role/kiln-publish
        use_cases: [ci-runner]`, 1)
		return s
	})
	release := func() string {
		t.Helper()
		out, stderr, code := w.kiln(t, "release", "ci-runner", "-o", "json")
		if code != 0 {
			t.Fatalf("release: exit %d\n%s%s", code, out, stderr)
		}
		var rep report.Release
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.Run.ID
	}

	first := release()
	m := readFile(t, w.dir+"/manifests/latest.json")
	for _, region := range awsRegions {
		if n := len(runImages(t, w.ec2(region), first)); n != 0 {
			t.Errorf("%s: the build account has %d images of run %s; it should keep none", region, n, first)
		}
		imgs := runImages(t, w.distEC2(t, region), first)
		if len(imgs) != 1 {
			t.Fatalf("%s: the distribution account has %d images of run %s, want 1", region, len(imgs), first)
		}
		img := imgs[0]
		tags := tagsOf(img.Tags)
		if tags[cloud.TagManaged] != "true" || tags["deployment_name"] != "grit" || tags[cloud.TagPhase] != cloud.PhaseReplicate || tags[cloud.TagTest] != cloud.TestPassed {
			t.Errorf("%s: copy %s tagged %v", region, aws.ToString(img.ImageId), tags)
		}
		if !aws.ToBool(img.Public) || aws.ToString(img.OwnerId) != distAccount {
			t.Errorf("%s: copy %s public %v, owner %s", region, aws.ToString(img.ImageId), aws.ToBool(img.Public), aws.ToString(img.OwnerId))
		}
		if e := m["ci-runner"][region]; e["id"] != aws.ToString(img.ImageId) {
			t.Errorf("%s: the manifest names %v, the distribution account has %s", region, e["id"], aws.ToString(img.ImageId))
		}
	}
	// The candidate was shared with the account, image and snapshot, before
	// the copies.
	shared := func(action, param string) bool {
		for _, c := range w.stub.Requests("ec2", action) {
			for k, v := range c.Form {
				if strings.HasPrefix(k, param) && len(v) > 0 && v[0] == distAccount {
					return true
				}
			}
		}
		return false
	}
	if !shared("ModifyImageAttribute", "LaunchPermission.Add.1.UserId") || !shared("ModifySnapshotAttribute", "UserId.1") {
		t.Error("the candidate and its snapshot were not shared with the distribution account")
	}

	// Drift and reconcile act there.
	if out, stderr, code := w.kiln(t, "drift"); code != 0 {
		t.Fatalf("drift: exit %d\n%s%s", code, out, stderr)
	}
	id := m["ci-runner"]["eu-west-1"]["id"].(string)
	if _, err := w.distEC2(t, "eu-west-1").ModifyImageAttribute(t.Context(), &ec2.ModifyImageAttributeInput{
		ImageId:          aws.String(id),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Remove: []ec2types.LaunchPermission{{Group: ec2types.PermissionGroupAll}}},
	}); err != nil {
		t.Fatal(err)
	}
	out, _, code := w.kiln(t, "drift", "-o", "json")
	var dr report.Drift
	json.Unmarshal([]byte(out), &dr)
	if code != 1 || len(dr.Findings) != 1 || dr.Findings[0].Kind != "public" || dr.Findings[0].Region != distAccount+"/eu-west-1" {
		t.Fatalf("drift after making %s private in the distribution account: exit %d\n%s", id, code, out)
	}
	if out, stderr, code := w.kiln(t, "reconcile", "--apply"); code != 0 {
		t.Fatalf("reconcile: exit %d\n%s%s", code, out, stderr)
	}
	if imgs := runImages(t, w.distEC2(t, "eu-west-1"), first); len(imgs) != 1 || !aws.ToBool(imgs[0].Public) {
		t.Fatalf("reconcile did not make %s public again", id)
	}

	// Promotion's gates read the images where they are.
	if out, stderr, code := w.kiln(t, "promote", "ci-runner", "--apply"); code != 0 {
		t.Fatalf("promote: exit %d\n%s%s", code, out, stderr)
	}

	// assets lists the run where it is.
	out, _, code = w.kiln(t, "assets", "--run", first, "-o", "json")
	var ar report.Assets
	if err := json.Unmarshal([]byte(out), &ar); err != nil || code != 0 {
		t.Fatalf("assets: exit %d, %v\n%s", code, err, out)
	}
	kinds := map[cloud.Kind]int{}
	for _, a := range ar.Assets {
		kinds[a.Kind]++
		if !strings.HasPrefix(a.Region, distAccount+"/") {
			t.Errorf("asset %s %s is at %s, not in the distribution account", a.Kind, a.ID, a.Region)
		}
	}
	if kinds[cloud.KindImage] != len(awsRegions) || kinds[cloud.KindSnapshot] != len(awsRegions) {
		t.Fatalf("assets of run %s: %v\n%s", first, kinds, out)
	}

	// A second release replaces the first in the manifest; cleanup of the
	// first then deletes its images and snapshots in the distribution
	// account, and leaves the second's.
	second := release()
	if out, stderr, code := w.kiln(t, "promote", "ci-runner", "--apply"); code != 0 {
		t.Fatalf("second promote: exit %d\n%s%s", code, out, stderr)
	}
	out, _, code = w.kiln(t, "drift", "-o", "json")
	dr = report.Drift{}
	json.Unmarshal([]byte(out), &dr)
	if code != 0 || dr.Summary.Orphans != len(awsRegions) {
		t.Fatalf("drift after the second release: exit %d, want the first run's %d images as orphans\n%s", code, len(awsRegions), out)
	}
	for _, f := range dr.Findings {
		if f.Kind != "orphan" || !strings.HasPrefix(f.Region, distAccount+"/") {
			t.Fatalf("finding %+v", f)
		}
	}
	// (A plan's exit code is the CLI's business; 2 would be an error.)
	out, stderr, code := w.kiln(t, "prune", "--keep", "1", "-o", "json")
	var pr struct {
		Plan []struct {
			Asset  cloud.Asset `json:"asset"`
			RunID  string      `json:"run_id"`
			Action string      `json:"action"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(out), &pr); err != nil || code == 2 {
		t.Fatalf("prune plan: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	deletes := 0
	for _, a := range pr.Plan {
		if a.Action == "delete" && a.Asset.Kind == cloud.KindImage {
			deletes++
			if a.RunID != first || !strings.HasPrefix(a.Asset.Region, distAccount+"/") {
				t.Errorf("prune would delete %+v", a)
			}
		}
	}
	if deletes != len(awsRegions) {
		t.Fatalf("prune plan deletes %d images, want the first run's %d\n%s", deletes, len(awsRegions), out)
	}
	out, stderr, code = w.kiln(t, "cleanup", "--run", first, "--apply", "--force-recent")
	if code != 0 {
		t.Fatalf("cleanup of run %s: exit %d\n%s%s", first, code, out, stderr)
	}
	for _, region := range awsRegions {
		c := w.distEC2(t, region)
		if n := len(runImages(t, c, first)); n != 0 {
			t.Errorf("%s: %d images of run %s left after cleanup", region, n, first)
		}
		if n := len(runImages(t, c, second)); n != 1 {
			t.Errorf("%s: %d images of run %s after cleaning up %s, want 1", region, n, second, first)
		}
		snaps, err := c.DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(snaps.Snapshots) != 1 {
			t.Errorf("%s: %d snapshots in the distribution account, want the second run's one", region, len(snaps.Snapshots))
		}
	}
	if out, _, code := w.kiln(t, "assets", "--run", first); code != 0 || strings.Contains(out, "image") {
		t.Fatalf("assets of the cleaned-up run: exit %d\n%s", code, out)
	}
}

// newPublishAccountWorld is an aws world whose use case is published into
// distAccount.
func newPublishAccountWorld(t *testing.T) *awsWorld {
	t.Helper()
	w := newAWSWorld(t, "{public: true}")
	w.editConfig(t, func(s string) string {
		return strings.Replace(s, `allowed_accounts: ["`+awstest.Account+`"]`,
			`allowed_accounts: ["`+awstest.Account+`", "`+distAccount+`"]
    publish_accounts:
      - role_arn: arn:aws:iam::`+distAccount+`:role/kiln-publish`, 1)
	})
	return w
}

// distLeftovers lists what a run left in the distribution account that the
// manifest does not reference: images, and snapshots not behind one.
func (w *awsWorld) distLeftovers(t *testing.T, run string, keep map[string]bool) []string {
	t.Helper()
	var left []string
	for _, region := range awsRegions {
		c := w.distEC2(t, region)
		kept := map[string]bool{}
		for _, img := range runImages(t, c, run) {
			id := aws.ToString(img.ImageId)
			if keep[region+"/"+id] {
				for _, id := range snapshotsOf(img) {
					kept[id] = true
				}
				continue
			}
			left = append(left, distAccount+"/"+region+" image "+id)
		}
		snaps, err := c.DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"},
			Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagAssetID), Values: []string{run}}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range snaps.Snapshots {
			if !kept[aws.ToString(s.SnapshotId)] {
				left = append(left, distAccount+"/"+region+" snapshot "+aws.ToString(s.SnapshotId))
			}
		}
	}
	return left
}

func snapshotsOf(img ec2types.Image) []string {
	var out []string
	for _, bd := range img.BlockDeviceMappings {
		if bd.Ebs != nil {
			out = append(out, aws.ToString(bd.Ebs.SnapshotId))
		}
	}
	return out
}

// Killed at every step boundary of replicating and publishing into the
// distribution account — around the share, the copies there, their
// permissions, the manifest — a resumed release ends with one image per
// region there, all in the manifest, and nothing in either account besides;
// cleanup of a killed run leaves nothing in either.
func TestAWSCrashPublishAccount(t *testing.T) {
	w := newPublishAccountWorld(t)
	trace := t.TempDir() + "/trace"
	p, code := runKiln(t, []string{"KILN_FAILPOINT_LOG=" + trace}, "release", "ci-runner", "-c", w.cfg)
	if code != 0 {
		t.Fatalf("release: exit %d\n%s", code, p.stderr.String())
	}
	// Regions behave alike: the boundaries of two of the four (the build
	// region's and another) stand for all, every crashStride-th of them.
	var points []int
	for i, e := range events(t, trace) {
		if (strings.Contains(e, "replicate") || strings.Contains(e, "publish")) &&
			!strings.Contains(e, "us-west-2") && !strings.Contains(e, "ap-southeast-2") {
			points = append(points, i+1)
		}
	}
	for s, i := crashStride(t), 0; s > 1 && i < len(points); i++ {
		points = append(points[:i], points[min(i+s-1, len(points)):]...)
	}
	if len(points) < 10 {
		t.Fatalf("only %d step boundaries in replicate and publish", len(points))
	}
	resume := crashTally{backend: "aws (moto)", variant: "publish account: kill, then release --resume ID"}
	clean := crashTally{backend: "aws (moto)", variant: "publish account: kill, then cleanup --run ID --apply"}
	defer resume.report(t)
	defer clean.report(t)
	for n, i := range points {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			w := newPublishAccountWorld(t)
			p, code := runKiln(t, []string{"KILN_FAILPOINT=" + strconv.Itoa(i)}, "release", "ci-runner", "-c", w.cfg)
			if code != -1 {
				t.Fatalf("kiln was not killed at boundary %d (exit %d)\n%s", i, code, p.stderr.String())
			}
			run := runID(t, p)
			var left []string
			tally := &resume
			if n%2 == 0 {
				rp, code := runKiln(t, nil, "release", "--resume", run, "-c", w.cfg)
				if code != 0 {
					t.Fatalf("resume after a kill at boundary %d: exit %d\n%s", i, code, rp.stderr.String())
				}
				keep := referenced(t, w.dir)
				for _, region := range awsRegions {
					if imgs := runImages(t, w.distEC2(t, region), run); len(imgs) != 1 || !keep[region+"/"+aws.ToString(imgs[0].ImageId)] {
						left = append(left, fmt.Sprintf("%s: %d images of the run in the distribution account", region, len(imgs)))
					}
				}
				left = append(left, w.distLeftovers(t, run, keep)...)
			} else {
				tally = &clean
				cp, code := runKiln(t, nil, "cleanup", "--run", run, "--apply", "-c", w.cfg)
				if code != 0 {
					t.Errorf("cleanup after a kill at boundary %d: exit %d\n%s%s", i, code, cp.stdout.String(), cp.stderr.String())
				}
				left = w.distLeftovers(t, run, referenced(t, w.dir))
			}
			left = append(left, w.leftovers(t, run, nil)...) // the build account keeps nothing
			tally.points++
			if len(left) > 0 {
				tally.leaked += len(left)
				t.Errorf("after a kill at boundary %d: %v", i, left)
			}
		})
	}
}
