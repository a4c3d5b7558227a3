package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/cloud/local/debimage/debimagetest"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/report"
)

// newAWSUploadWorld is an aws world whose use case builds with method
// upload from a given disk (build.disk): a sparse 24 MiB disk with data
// in a few blocks.
func newAWSUploadWorld(t *testing.T, publish string) *awsWorld {
	t.Helper()
	w := newAWSWorld(t, publish)
	f, err := os.Create(filepath.Join(w.dir, "disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(24 << 20)
	for _, off := range []int64{0, 1 << 20, 5 << 20, 24<<20 - 8192} {
		data := make([]byte, 8192)
		rand.Read(data)
		f.WriteAt(data, off)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(w.cfg)
	s := string(data)
	i := strings.Index(s, "    base: {ami: ")
	j := strings.Index(s, "    tests: [tests/boot.sh]\n")
	if i < 0 || j < i {
		t.Fatalf("aws world's kiln.yaml changed:\n%s", s)
	}
	s = s[:i] + "    build: {method: upload, disk: disk.raw}\n" + s[j:]
	if err := os.WriteFile(w.cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// uploadRegions are the regions of the upload end-to-end test: the four of
// the aws worlds. The same release to 16 regions (760 MiB of data a region,
// 12 GB in all) is the upload benchmark (scripts/bench-aws.sh); here it
// would add minutes to CI for the same code paths.
var uploadRegions = awsRegions

// The local example recipe released with build: {method: upload}: the
// local builder makes the disk (mmdebstrap, the same provisioning as the
// local backend), kiln writes it into a snapshot in every region at once,
// registers the candidate, boot-tests it on an instance and publishes one
// image per region. No build instance, key pair or security group; one
// CopyImage, in the build region.
func TestAWSUploadReleaseExample(t *testing.T) {
	if m := debimagetest.MissingTools(); m != "" {
		t.Fatal(m)
	}
	dir := initProject(t)
	motoServer.Reset(t)
	stub := awstest.NewStub(t, motoServer.URL)
	awstest.Env(t, stub.URL)
	guests := awstest.SimulateGuests(t, motoServer.URL, "us-east-1")
	stub.SetConsole(guests.Console)
	s3c := s3.NewFromConfig(awstest.Config(motoServer.URL, "us-east-1"), func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(awsBucket)}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "kiln.yaml")
	yaml := fmt.Sprintf(`project: demo
backend:
  type: aws
  aws:
    allowed_accounts: ["%s"]
    bucket: %s
    poll_interval: 10ms
    retry_max_backoff: 50ms
    build_timeout: 10m
    copy_timeout: 2m
    test_timeout: 1m
  local:
    cache_dir: %s
regions: [%s]
build_region: us-east-1
cost_tag: {key: deployment_name, value: demo}
use_cases:
  debian-sandbox:
    architectures: [x86_64]
    base: {suite: bookworm, packages: [ca-certificates, less, python3]}
    build: {method: upload}
    provision:
      - shell: scripts/provision.sh
      - file: {source: files/welcome.txt, destination: /etc/kiln-demo/welcome.txt, mode: "0644"}
    tests: [tests/boot.sh]
    publish: {public: true, deprecate_after: 365d}
`, awstest.Account, awsBucket, debimagetest.CacheDir(), strings.Join(uploadRegions, ", "))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, stderr, code := kiln(t, "release", "debian-sandbox", "-c", cfg, "-o", "json")
	if code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep report.Release
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	run := rep.Run.ID
	m, err := manifest.Load(filepath.Join(dir, "manifests/latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	for _, region := range uploadRegions {
		c := ec2.NewFromConfig(awstest.Config(stub.URL, region))
		imgs, err := c.DescribeImages(t.Context(), &ec2.DescribeImagesInput{Owners: []string{"self"},
			Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagAssetID), Values: []string{run}}}})
		if err != nil || len(imgs.Images) != 1 {
			t.Fatalf("%s: %d images of the run (%v), want 1", region, len(imgs.Images), err)
		}
		img := imgs.Images[0]
		if e, ok := m.Get("debian-sandbox", region); !ok || e.ID != aws.ToString(img.ImageId) || !e.Public || e.Architecture != "x86_64" {
			t.Errorf("%s: manifest entry %+v for image %s", region, e, aws.ToString(img.ImageId))
		}
		if img.BootMode != ec2types.BootModeValuesUefi || !aws.ToBool(img.EnaSupport) || img.Architecture != ec2types.ArchitectureValuesX8664 {
			t.Errorf("%s: boot mode %s, ENA %v, architecture %s", region, img.BootMode, aws.ToBool(img.EnaSupport), img.Architecture)
		}
		if region == "us-east-1" {
			continue // the build region's release is a copy of the candidate
		}
		snap := aws.ToString(img.BlockDeviceMappings[0].Ebs.SnapshotId)
		blocks, completed := stub.SnapshotBlocks(snap)
		if !completed || len(blocks) < 100 {
			t.Fatalf("%s: image %s stands on %s with %d blocks written (completed %v)", region, aws.ToString(img.ImageId), snap, len(blocks), completed)
		}
		h := sha256.New()
		for _, i := range slices.Sorted(maps.Keys(blocks)) {
			d := blocks[i]
			h.Write(d[:])
		}
		sum := base64.StdEncoding.EncodeToString(h.Sum(nil))
		if tagsOf(img.Tags)["kiln:upload"] != sum {
			t.Errorf("%s: the snapshot's blocks are not the disk kiln scanned (%s, tag %s)", region, sum, tagsOf(img.Tags)["kiln:upload"])
		}
		sums = append(sums, sum)
	}
	if len(slices.Compact(sums)) != 1 {
		t.Errorf("the regions hold different disks: %v", slices.Compact(sums))
	}
	for action, want := range map[string]int{"RunInstances": 1, "CopyImage": 1, "CreateSecurityGroup": 0, "CreateImage": 0} {
		if n := stub.Calls("ec2", action); n != want {
			t.Errorf("%d %s calls, want %d", n, action, want)
		}
	}
	// The only key pair is the release's claim on its channel (one
	// CreateKeyPair); the build makes none.
	for _, c := range stub.Requests("ec2", "CreateKeyPair") {
		if name := c.Form.Get("KeyName"); !strings.HasPrefix(name, "kiln-claim.") {
			t.Errorf("CreateKeyPair %q: the upload build made a key pair", name)
		}
	}
	if n := stub.Calls("ec2", "CreateKeyPair"); n != 1 {
		t.Errorf("%d CreateKeyPair calls, want 1 (the claim)", n)
	}
	puts := stub.Calls("ebs", "PutSnapshotBlock")
	t.Logf("release of %s to %d regions by upload: %s, %d blocks written (%d MiB a region)", run, len(uploadRegions), time.Since(start).Round(time.Second), puts, puts/len(uploadRegions)/2)
	if work, _ := filepath.Glob(filepath.Join(dir, ".kiln", "work", "upload-*")); len(work) > 0 {
		t.Errorf("work directories left: %v", work)
	}
}
