package aws

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

// buildInput is a small recipe: one shell step and one file.
func buildInput(t *testing.T, base config.Base) cloud.BuildInput {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "setup.sh"), "#!/bin/sh\necho provisioning-marker-42\n", 0o644)
	write(t, filepath.Join(dir, "motd"), "welcome\n", 0o644)
	return cloud.BuildInput{
		Region: "us-east-1",
		Name:   "ci-runner-x86_64-kiln-20261121-abc123",
		Arch:   "x86_64",
		UseCase: &config.UseCase{Name: "ci-runner", Base: base, Provision: []config.Step{
			{Name: "setup", Shell: "setup.sh"},
			{File: &config.FileStep{Source: "motd", Destination: "/etc/motd", Mode: "0644"}},
		}},
		Dir:      dir,
		StateDir: filepath.Join(dir, ".kiln"),
		Tags:     runTags(),
		Token:    cloud.Token("kiln-20261121-abc123", "build", "us-east-1"),
	}
}

// assertBuilt checks with the SDK directly that img carries the build's
// tags on itself and its snapshots, and that no temporary resource is left.
func assertBuilt(t *testing.T, r *rig, in cloud.BuildInput, img cloud.Image) {
	t.Helper()
	c := r.ec2(in.Region)
	raw := describeOne(t, c, img.ID)
	if raw.State != ec2types.ImageStateAvailable || aws.ToString(raw.Name) != in.Name {
		t.Errorf("image %s: state %s name %q", img.ID, raw.State, aws.ToString(raw.Name))
	}
	want := withTags(in.Tags, map[string]string{cloud.TagPhase: cloud.PhaseBuild, cloud.TagToken: in.Token, cloud.TagArch: "x86_64"})
	if miss := missingTags(tagMap(raw.Tags), want); len(miss) > 0 {
		t.Errorf("image lacks tags %v", miss)
	}
	snaps := snapshotIDs(raw)
	if len(snaps) == 0 {
		t.Error("image has no snapshot")
	}
	for _, s := range snaps {
		if miss := missingTags(snapshotTags(t, c, s), want); len(miss) > 0 {
			t.Errorf("snapshot %s lacks tags %v", s, miss)
		}
	}
	name := tempName(in.Token)
	kp, err := c.DescribeKeyPairs(t.Context(), &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{filter("key-name", name)}})
	if err != nil || len(kp.KeyPairs) != 0 {
		t.Errorf("key pair %s left: %v %v", name, kp, err)
	}
	sg, err := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{filter("group-name", name)}})
	if err != nil || len(sg.SecurityGroups) != 0 {
		t.Errorf("security group %s left: %v", name, err)
	}
	insts, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{filter("tag:"+cloud.TagToken, in.Token)}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, res := range insts.Reservations {
		for _, i := range res.Instances {
			n++
			if i.State.Name != ec2types.InstanceStateNameTerminated {
				t.Errorf("build instance %s is %s, want terminated", aws.ToString(i.InstanceId), i.State.Name)
			}
			if tags := tagMap(i.Tags); tags[cloud.TagPhase] != cloud.PhaseBuild || !cloud.Match(tags, in.Tags) {
				t.Errorf("build instance tags %v", tags)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d build instances, want 1", n)
	}
}

func TestBuild(t *testing.T) {
	r := newRig(t)
	guests := awstest.SimulateGuests(t, motoServer.URL, "us-east-1")
	base := seedImage(t, r.ec2("us-east-1"), "debian-12-base", nil)
	in := buildInput(t, config.Base{AMI: *base.ImageId})
	// A terminating instance holds the group for a while on AWS.
	r.stub.FailDeleteSecurityGroup(2)

	img, err := r.b.Build(ctxTimeout(t, time.Minute), in)
	if err != nil {
		t.Fatal(err)
	}
	if img.State != cloud.StateAvailable || img.Region != "us-east-1" || img.Architecture != "x86_64" {
		t.Errorf("Build returned %+v", img)
	}
	assertBuilt(t, r, in, img)

	runs := r.stub.Requests("ec2", "RunInstances")
	if len(runs) != 1 {
		t.Fatalf("%d RunInstances calls, want 1", len(runs))
	}
	f := runs[0].Form
	checks := map[string]string{
		"ClientToken":                       in.Token,
		"ImageId":                           *base.ImageId,
		"InstanceInitiatedShutdownBehavior": "stop",
		"KeyName":                           tempName(in.Token),
		"InstanceType":                      "t3.micro",
	}
	for k, want := range checks {
		if got := f.Get(k); got != want {
			t.Errorf("RunInstances %s = %q, want %q", k, got, want)
		}
	}
	if f.Get("SecurityGroupId.1") == "" {
		t.Error("RunInstances without the build's security group")
	}
	// Without a bucket the bundle travels in the user data; the guest
	// unpacked it there and checked its digest.
	bundles := guests.Bundles()
	if len(bundles) != 1 {
		t.Fatalf("the guest played %d instances, want 1", len(bundles))
	}
	for _, b := range bundles {
		if b.Err != nil || b.URL != "" || string(b.Files["steps/1/setup.sh"]) != "#!/bin/sh\necho provisioning-marker-42\n" || string(b.Files["steps/2/src"]) != "welcome\n" {
			t.Errorf("bundle in the user data: err %v, url %q, files %v", b.Err, b.URL, slices.Collect(maps.Keys(b.Files)))
		}
	}
	specs := map[string]bool{}
	for i := 1; f.Get("TagSpecification."+strconv.Itoa(i)+".ResourceType") != ""; i++ {
		specs[f.Get("TagSpecification."+strconv.Itoa(i)+".ResourceType")] = true
	}
	if !specs["instance"] || !specs["volume"] {
		t.Errorf("RunInstances tags %v at creation, want instance and volume", specs)
	}
	for _, action := range []string{"CreateKeyPair", "CreateSecurityGroup", "CreateImage"} {
		reqs := r.stub.Requests("ec2", action)
		if len(reqs) != 1 || reqs[0].Form.Get("TagSpecification.1.ResourceType") == "" {
			t.Errorf("%s: %d calls, want 1 with TagSpecification", action, len(reqs))
		}
	}
	if n := r.stub.Calls("ec2", "DeleteSecurityGroup"); n != 3 {
		t.Errorf("DeleteSecurityGroup called %d times, want 3 (two DependencyViolation answers, then success)", n)
	}
	if _, err := os.Stat(filepath.Join(in.StateDir, "logs", "aws-build-"+in.Token+".log")); err != nil {
		t.Errorf("build console not kept: %v", err)
	}

	// A rerun with the same token returns the same image and starts nothing.
	again, err := r.b.Build(ctxTimeout(t, time.Minute), in)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != img.ID {
		t.Errorf("rerun built %s, first run %s", again.ID, img.ID)
	}
	if n := r.stub.Calls("ec2", "RunInstances"); n != 1 {
		t.Errorf("rerun started an instance (%d RunInstances calls)", n)
	}
	if imgs := ownImages(t, r.ec2("us-east-1"), filter("name", in.Name)); len(imgs) != 1 {
		t.Errorf("%d images named %s, want 1", len(imgs), in.Name)
	}
}

func TestBuildReusesInstanceAfterCrash(t *testing.T) {
	r := newRig(t)
	base := seedImage(t, r.ec2("us-east-1"), "debian-12-base", nil)
	in := buildInput(t, config.Base{AMI: *base.ImageId})
	c, _ := r.b.clients.region("us-east-1")
	// The crashed attempt got as far as starting its instance.
	first, err := r.b.startBuildInstance(t.Context(), c, instanceSpec{
		ImageID: *base.ImageId, InstanceType: "t3.micro", UserData: "IyEvYmluL3NoCg==",
		Tags: withTags(in.Tags, map[string]string{cloud.TagPhase: cloud.PhaseBuild, cloud.TagToken: in.Token}), Token: in.Token,
	})
	if err != nil {
		t.Fatal(err)
	}
	awstest.SimulateGuests(t, motoServer.URL, "us-east-1")
	img, err := r.b.Build(ctxTimeout(t, time.Minute), in)
	if err != nil {
		t.Fatal(err)
	}
	if n := r.stub.Calls("ec2", "RunInstances"); n != 1 {
		t.Errorf("%d RunInstances calls, want only the crashed attempt's", n)
	}
	if src := describeOne(t, r.ec2("us-east-1"), img.ID).SourceInstanceId; aws.ToString(src) != first {
		t.Errorf("image made from %s, want the crashed attempt's instance %s", aws.ToString(src), first)
	}
	assertBuilt(t, r, in, img)
}

func TestBuildStack(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.AWSBackend) { c.UseStack = true }))
	awstest.SimulateGuests(t, motoServer.URL, "us-east-1")
	base := seedImage(t, r.ec2("us-east-1"), "debian-12-base", nil)
	if _, err := r.ssm("us-east-1").PutParameter(t.Context(), &ssm.PutParameterInput{
		Name: aws.String("/test/debian/12/amd64"), Value: base.ImageId, Type: "String"}); err != nil {
		t.Fatal(err)
	}
	in := buildInput(t, config.Base{SSMParameter: "/test/debian/12/amd64"})
	img, err := r.b.Build(ctxTimeout(t, time.Minute), in)
	if err != nil {
		t.Fatal(err)
	}
	assertBuilt(t, r, in, img)

	reqs := r.stub.Requests("cloudformation", "CreateStack")
	if len(reqs) != 1 {
		t.Fatalf("%d CreateStack calls, want 1", len(reqs))
	}
	f := reqs[0].Form
	if f.Get("StackName") != tempName(in.Token) || f.Get("Tags.member.1.Key") == "" {
		t.Errorf("CreateStack name %q, first tag %q", f.Get("StackName"), f.Get("Tags.member.1.Key"))
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	if err := json.Unmarshal([]byte(f.Get("TemplateBody")), &tmpl); err != nil {
		t.Fatalf("template is not JSON: %v", err)
	}
	for id, typ := range map[string]string{"KeyPair": "AWS::EC2::KeyPair", "SecurityGroup": "AWS::EC2::SecurityGroup", "Instance": "AWS::EC2::Instance"} {
		res, ok := tmpl.Resources[id]
		if !ok || res.Type != typ || res.Properties["Tags"] == nil {
			t.Errorf("template resource %s: %+v, want a tagged %s", id, res, typ)
		}
	}
	if got := tmpl.Resources["Instance"].Properties["ImageId"]; got != *base.ImageId {
		t.Errorf("stack instance from %v, want the SSM parameter's %s", got, *base.ImageId)
	}
	if _, err := r.cfn("us-east-1").DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(tempName(in.Token))}); err == nil {
		t.Error("build stack still exists")
	}
	if n := r.stub.Calls("ec2", "RunInstances"); n != 0 {
		t.Errorf("stack build called RunInstances %d times", n)
	}
}

func TestBuildProvisioningFails(t *testing.T) {
	r := newRig(t)
	awstest.SimulateGuests(t, motoServer.URL, "us-east-1")
	r.stub.SetConsole(func(region, id string) (string, bool) {
		return "cloud-init starting\nKILN-BUILD-RESULT: FAIL step 1 (setup) exited with status 3\n", true
	})
	base := seedImage(t, r.ec2("us-east-1"), "debian-12-base", nil)
	in := buildInput(t, config.Base{AMI: *base.ImageId})
	_, err := r.b.Build(ctxTimeout(t, time.Minute), in)
	if err == nil || !strings.Contains(err.Error(), "step 1 (setup) exited with status 3") {
		t.Fatalf("Build: %v, want the failing step", err)
	}
	if n := r.stub.Calls("ec2", "CreateImage"); n != 0 {
		t.Errorf("an image was made of a failed build")
	}
	assertNoTemporaries(t, r, in)
}

func TestBuildTimesOut(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.AWSBackend) { c.BuildTimeout = config.Duration(300 * time.Millisecond) }))
	// No guest: the instance keeps running.
	base := seedImage(t, r.ec2("us-east-1"), "debian-12-base", nil)
	in := buildInput(t, config.Base{AMI: *base.ImageId})
	_, err := r.b.Build(ctxTimeout(t, time.Minute), in)
	var te *cloud.TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "timed out after 300ms waiting for build instance") ||
		!strings.Contains(err.Error(), "running") {
		t.Fatalf("Build: %v, want a timeout saying what it waited for and the last state", err)
	}
	assertNoTemporaries(t, r, in)
}

func assertNoTemporaries(t *testing.T, r *rig, in cloud.BuildInput) {
	t.Helper()
	c := r.ec2(in.Region)
	insts, _ := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		filter("tag:"+cloud.TagToken, in.Token), filter("instance-state-name", liveStates...)}})
	if len(insts.Reservations) != 0 {
		t.Errorf("build instance left running after the failure")
	}
	kp, _ := c.DescribeKeyPairs(t.Context(), &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{filter("key-name", tempName(in.Token))}})
	sg, _ := c.DescribeSecurityGroups(t.Context(), &ec2.DescribeSecurityGroupsInput{Filters: []ec2types.Filter{filter("group-name", tempName(in.Token))}})
	if len(kp.KeyPairs)+len(sg.SecurityGroups) != 0 {
		t.Errorf("key pair or security group left after the failure")
	}
}

func TestBuildBadInput(t *testing.T) {
	r := newRig(t)
	good := buildInput(t, config.Base{AMI: "ami-12345678"})
	tests := []struct {
		name string
		edit func(*cloud.BuildInput)
		want string
	}{
		{"no token", func(in *cloud.BuildInput) { in.Token = "" }, "empty token"},
		{"bad arch", func(in *cloud.BuildInput) { in.Arch = "sparc" }, `architecture "sparc"`},
		{"no base", func(in *cloud.BuildInput) { in.UseCase.Base = config.Base{} }, "use_cases.ci-runner.base: set one of"},
		{"name filter without owner", func(in *cloud.BuildInput) { in.UseCase.Base = config.Base{NameFilter: "debian-*"} }, "needs use_cases.ci-runner.base.owner"},
		{"absent base", func(in *cloud.BuildInput) {}, `use_cases.ci-runner.base.ami "ami-12345678"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good
			uc := *good.UseCase
			in.UseCase = &uc
			tt.edit(&in)
			_, err := r.b.Build(t.Context(), in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if n := r.stub.Calls("ec2", "RunInstances"); n != 0 {
		t.Errorf("bad input started %d instances", n)
	}
}

func TestResolveBaseNewestByName(t *testing.T) {
	r := newRig(t)
	c := r.ec2("us-east-1")
	seedImage(t, c, "debian-12-amd64-20261001", nil)
	time.Sleep(1100 * time.Millisecond) // creation dates have second resolution
	newer := seedImage(t, c, "debian-12-amd64-20261101", nil)
	seedImage(t, c, "ubuntu-24.04-amd64", nil)
	rc, _ := r.b.clients.region("us-east-1")
	im, err := r.b.resolveBase(t.Context(), rc, "ci", config.Base{NameFilter: "debian-12-amd64-*", Owner: "self"}, "x86_64")
	if err != nil || aws.ToString(im.ImageId) != *newer.ImageId {
		t.Errorf("resolveBase = %s, %v; want the newest match %s", aws.ToString(im.ImageId), err, *newer.ImageId)
	}
	_, err = r.b.resolveBase(t.Context(), rc, "ci", config.Base{NameFilter: "debian-12-amd64-*", Owner: "self"}, "arm64")
	if !errors.Is(err, cloud.ErrNotFound) || !strings.Contains(err.Error(), "use_cases.ci.base.name_filter") {
		t.Errorf("resolveBase for arm64: %v, want ErrNotFound naming the field", err)
	}
}
