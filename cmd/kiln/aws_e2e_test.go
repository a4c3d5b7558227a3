package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/deploy/localunit"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/report"
)

// motoServer is this test binary's moto; tests that use it reset it.
var motoServer *awstest.Moto

func TestMain(m *testing.M) {
	localunit.MaybeSupervise() // the test binary supervises the units kiln(t, ...) deploys
	os.Exit(awstest.RunMain(m, &motoServer))
}

var awsRegions = []string{"us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"}

// awsWorld is a kiln project on the aws backend, pointed at moto through the
// wire-format stub (for what moto lacks) and the fault proxy.
type awsWorld struct {
	dir    string
	cfg    string
	base   string // the AMI builds start from
	stub   *awstest.Stub
	faults *awstest.Faults
	guests *awstest.Guests
}

// awsBucket is the project's bucket in every aws world: bundles are
// staged there.
const awsBucket = "kiln-grit"

func newAWSWorld(t *testing.T, publish string) *awsWorld {
	t.Helper()
	motoServer.Reset(t)
	w := &awsWorld{dir: t.TempDir()}
	w.stub = awstest.NewStub(t, motoServer.URL)
	w.faults = awstest.NewFaults(t, w.stub.URL, 7)
	awstest.Env(t, w.faults.URL)
	// The guests fetch their bundles through the presigned URLs in their
	// user data, check the digests and print the markers.
	w.guests = awstest.SimulateGuests(t, motoServer.URL, awsRegions...)
	w.stub.SetConsole(w.guests.Console)
	if _, err := w.s3().CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(awsBucket)}); err != nil {
		t.Fatal(err)
	}
	base := seedBaseImage(t, w.ec2("us-east-1"))
	w.base = base
	os.MkdirAll(filepath.Join(w.dir, "scripts"), 0o755)
	os.MkdirAll(filepath.Join(w.dir, "tests"), 0o755)
	os.WriteFile(filepath.Join(w.dir, "scripts/setup.sh"), []byte("#!/bin/sh\necho provisioned >/etc/kiln-ci\n"), 0o755)
	os.WriteFile(filepath.Join(w.dir, "tests/boot.sh"), []byte("#!/bin/sh\ntest -f /etc/kiln-ci\n"), 0o755)
	yaml := fmt.Sprintf(`project: grit
backend:
  type: aws
  aws:
    allowed_accounts: ["%s"]
    poll_interval: 10ms
    retry_max_backoff: 50ms
    build_timeout: 2m
    copy_timeout: 2m
    test_timeout: 1m
    bucket: %s
regions: [%s]
build_region: us-east-1
cost_tag: {key: deployment_name, value: grit}
use_cases:
  ci-runner:
    architectures: [x86_64]
    base: {ami: %s}
    provision:
      - shell: scripts/setup.sh
    tests: [tests/boot.sh]
    publish: %s
`, awstest.Account, awsBucket, strings.Join(awsRegions, ", "), base, publish)
	w.cfg = filepath.Join(w.dir, "kiln.yaml")
	if err := os.WriteFile(w.cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// seedBaseImage makes the image builds start from, directly in moto (which
// runs an instance from any AMI id).
func seedBaseImage(t *testing.T, c *ec2.Client) string {
	t.Helper()
	run, err := c.RunInstances(t.Context(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := c.CreateImage(t.Context(), &ec2.CreateImageInput{InstanceId: run.Instances[0].InstanceId, Name: aws.String("base-debian-12")})
	if err != nil {
		t.Fatal(err)
	}
	c.TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(run.Instances[0].InstanceId)}})
	return aws.ToString(img.ImageId)
}

func (w *awsWorld) ec2(region string) *ec2.Client {
	return ec2.NewFromConfig(awstest.Config(motoServer.URL, region))
}

func (w *awsWorld) s3() *s3.Client {
	return s3.NewFromConfig(awstest.Config(motoServer.URL, "us-east-1"), func(o *s3.Options) { o.UsePathStyle = true })
}

// staged lists the bundles staged in the project's bucket, straight
// from moto.
func (w *awsWorld) staged(t *testing.T) []string {
	t.Helper()
	out, err := w.s3().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(awsBucket), Prefix: aws.String("kiln/")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// kiln runs the CLI on the world's project.
func (w *awsWorld) kiln(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return kiln(t, append(args, "-c", w.cfg)...)
}

// images lists the account's images tagged with the run, straight from moto.
func (w *awsWorld) images(t *testing.T, region, run string) []ec2types.Image {
	t.Helper()
	out, err := w.ec2(region).DescribeImages(t.Context(), &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagAssetID), Values: []string{run}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.Images
}

func tagsOf(tags []ec2types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func TestAWSReleaseEndToEnd(t *testing.T) {
	w := newAWSWorld(t, "{public: true, deprecate_after: 180d}")
	// One request in five is throttled or answered 503: the release still
	// ends with exactly one image per region.
	w.faults.SetRate(0.2)

	out, stderr, code := w.kiln(t, "release", "ci-runner", "-o", "json")
	if code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep report.Release
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("release report: %v\n%s", err, out)
	}
	run := rep.Run.ID
	total, injected := w.faults.Counts()
	t.Logf("run %s: %d requests, %d faults injected", run, total, injected)
	if injected == 0 {
		t.Fatal("the fault proxy injected nothing")
	}
	w.faults.SetRate(0.2)

	m, err := manifest.Load(filepath.Join(w.dir, "manifests/latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range awsRegions {
		imgs := w.images(t, region, run)
		if len(imgs) != 1 {
			t.Fatalf("%s: %d images of run %s, want exactly 1", region, len(imgs), run)
		}
		img := imgs[0]
		tags := tagsOf(img.Tags)
		for k, v := range map[string]string{
			cloud.TagManaged: "true", cloud.TagProject: "grit", cloud.TagAssetID: run, cloud.TagUseCase: "ci-runner",
			cloud.TagPhase: cloud.PhaseReplicate, cloud.TagTest: cloud.TestPassed, "deployment_name": "grit",
		} {
			if tags[k] != v {
				t.Errorf("%s %s: tag %s = %q, want %q", region, aws.ToString(img.ImageId), k, tags[k], v)
			}
		}
		if !aws.ToBool(img.Public) {
			t.Errorf("%s: image is not public", region)
		}
		e, ok := m.Get("ci-runner", region)
		if !ok || e.ID != aws.ToString(img.ImageId) || !e.Public || e.Architecture != "x86_64" || e.Name != aws.ToString(img.Name) {
			t.Errorf("%s: manifest entry %+v does not match image %s", region, e, aws.ToString(img.ImageId))
		}
		if e.DeprecationTime == "" {
			t.Errorf("%s: manifest entry has no deprecation time", region)
		}
		// No temporary resources left behind.
		c := w.ec2(region)
		kp, _ := c.DescribeKeyPairs(t.Context(), &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagAssetID), Values: []string{run}}}})
		sg, _ := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagAssetID), Values: []string{run}}}})
		in, _ := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
			{Name: aws.String("tag:" + cloud.TagAssetID), Values: []string{run}},
			{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
		}})
		if len(kp.KeyPairs)+len(sg.SecurityGroups) > 0 || (in != nil && len(in.Reservations) > 0) {
			t.Errorf("%s: temporary resources left: %d key pairs, %d security groups, %v", region, len(kp.KeyPairs), len(sg.SecurityGroups), in.Reservations)
		}
	}

	// All in sync; then drift behind kiln's back, found and reconciled.
	if out, stderr, code := w.kiln(t, "drift"); code != 0 {
		t.Fatalf("drift after release: exit %d\n%s%s", code, out, stderr)
	}
	private := m["ci-runner"]["eu-west-1"].ID
	_, err = w.ec2("eu-west-1").ModifyImageAttribute(t.Context(), &ec2.ModifyImageAttributeInput{
		ImageId: aws.String(private),
		LaunchPermission: &ec2types.LaunchPermissionModifications{
			Remove: []ec2types.LaunchPermission{{Group: ec2types.PermissionGroupAll}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, _, code = w.kiln(t, "drift", "-o", "json")
	var dr report.Drift
	json.Unmarshal([]byte(out), &dr)
	if code != 1 || len(dr.Findings) != 1 || dr.Findings[0].Kind != "public" || dr.Findings[0].ImageID != private {
		t.Fatalf("drift after making %s private: exit %d\n%s", private, code, out)
	}
	if out, stderr, code := w.kiln(t, "reconcile", "--apply"); code != 0 {
		t.Fatalf("reconcile: exit %d\n%s%s", code, out, stderr)
	}
	if out, _, code := w.kiln(t, "drift"); code != 0 {
		t.Fatalf("drift after reconcile: exit %d\n%s", code, out)
	}

	// The run's assets are its images and their snapshots; cleanup refuses
	// to delete what the manifest references.
	out, _, code = w.kiln(t, "assets", "--run", run, "-o", "json")
	var ar report.Assets
	if err := json.Unmarshal([]byte(out), &ar); err != nil || code != 0 {
		t.Fatalf("assets: exit %d, %v\n%s", code, err, out)
	}
	kinds := map[cloud.Kind]int{}
	for _, a := range ar.Assets {
		kinds[a.Kind]++
	}
	if kinds[cloud.KindImage] != len(awsRegions) || kinds[cloud.KindSnapshot] != len(awsRegions) || len(ar.Assets) != 2*len(awsRegions) {
		t.Fatalf("assets of run %s: %v", run, kinds)
	}
	out, _, code = w.kiln(t, "cleanup", "--run", run, "--apply", "--force-recent")
	if code != 0 || strings.Contains(out, "deleted") {
		t.Fatalf("cleanup of a published run: exit %d\n%s", code, out)
	}
	for _, region := range awsRegions {
		if n := len(w.images(t, region, run)); n != 1 {
			t.Fatalf("%s: cleanup removed a referenced image", region)
		}
	}
}

// A use case with exports gets them written to S3 by publish, tagged, once.
func TestAWSReleaseExports(t *testing.T) {
	w := newAWSWorld(t, "{public: false, accounts: [\"111122223333\"]}")
	data, _ := os.ReadFile(w.cfg)
	s := strings.Replace(string(data), "    test_timeout: 1m\n", "    test_timeout: 1m\n    export_bucket: kiln-exports\n    export_prefix: images/\n", 1)
	s = strings.Replace(s, "    tests: [tests/boot.sh]\n", "    tests: [tests/boot.sh]\n    exports: [vmdk]\n", 1)
	os.WriteFile(w.cfg, []byte(s), 0o644)
	s3c := s3.NewFromConfig(awstest.Config(motoServer.URL, "us-east-1"), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("kiln-exports")}); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := w.kiln(t, "release", "ci-runner", "-o", "json")
	if code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep report.Release
	json.Unmarshal([]byte(out), &rep)
	if rep.Publish == nil || len(rep.Publish.Exports) != 1 || !strings.HasPrefix(rep.Publish.Exports[0].Location, "s3://kiln-exports/images/") {
		t.Fatalf("exports in the report: %+v", rep.Publish)
	}
	objs, err := s3c.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("kiln-exports")})
	if err != nil || len(objs.Contents) != 1 {
		t.Fatalf("objects in the bucket: %v, %v", objs, err)
	}
	// Its size and sha256 are in the report, as the bucket has them.
	obj, err := s3c.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String("kiln-exports"), Key: objs.Contents[0].Key})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	sum := sha256.Sum256(body)
	if e := rep.Publish.Exports[0]; e.Size != int64(len(body)) || e.SHA256 != hex.EncodeToString(sum[:]) || e.Format != "vmdk" {
		t.Errorf("export in the report %+v; the object has %d bytes, sha256 %x", e, len(body), sum)
	}
	tags, err := s3c.GetObjectTagging(t.Context(), &s3.GetObjectTaggingInput{Bucket: aws.String("kiln-exports"), Key: objs.Contents[0].Key})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range tags.TagSet {
		got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	if got[cloud.TagAssetID] != rep.Run.ID || got["deployment_name"] != "grit" {
		t.Fatalf("export object tags %v", got)
	}
	// The export is an asset of the run, found by kiln assets.
	out, _, _ = w.kiln(t, "assets", "--run", rep.Run.ID, "-o", "json")
	if !strings.Contains(out, `"kind": "export"`) || !strings.Contains(out, fmt.Sprintf(`"size": %d`, len(body))) {
		t.Fatalf("kiln assets does not list the export:\n%s", out)
	}
}
