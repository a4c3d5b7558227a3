package aws

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/kiln-images/kiln/internal/cloud"
)

// runFrom starts an instance from image directly in moto.
func runFrom(t *testing.T, c *ec2.Client, image string) string {
	t.Helper()
	out, err := c.RunInstances(t.Context(), &ec2.RunInstancesInput{
		ImageId: aws.String(image), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatalf("run instance from %s: %v", image, err)
	}
	return aws.ToString(out.Instances[0].InstanceId)
}

func TestImagesInUse(t *testing.T) {
	r := newRig(t)
	ctx := t.Context()
	c := r.ec2("us-east-1")
	img := map[string]string{}
	for _, n := range []string{"running", "stopped", "terminated", "idle", "lt-v1", "lt-v2", "lt-v3"} {
		img[n] = aws.ToString(seedImage(t, c, "inuse-"+n, runTags()).ImageId)
	}
	running := runFrom(t, c, img["running"])
	stopped := runFrom(t, c, img["stopped"])
	if _, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{stopped}}); err != nil {
		t.Fatal(err)
	}
	gone := runFrom(t, c, img["terminated"])
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{gone}}); err != nil {
		t.Fatal(err)
	}
	// A template whose version 1 is neither its default nor its latest any
	// more: an Auto Scaling group may still pin it.
	lt, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("web"),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(img["lt-v1"])},
	})
	if err != nil {
		t.Fatal(err)
	}
	ltID := aws.ToString(lt.LaunchTemplate.LaunchTemplateId)
	for _, n := range []string{"lt-v2", "lt-v3"} {
		if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{
			LaunchTemplateId:   aws.String(ltID),
			LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(img[n])},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(ltID), DefaultVersion: aws.String("2")}); err != nil {
		t.Fatal(err)
	}
	// Another region's users do not count here.
	runFrom(t, r.ec2("us-west-2"), img["idle"])

	got, err := r.b.ImagesInUse(ctx, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		img["running"]: fmt.Sprintf("instance %s (running)", running),
		img["stopped"]: fmt.Sprintf("instance %s (stopped)", stopped),
		img["lt-v1"]:   fmt.Sprintf("launch template web (%s) version 1", ltID),
		img["lt-v2"]:   fmt.Sprintf("launch template web (%s) version 2", ltID),
		img["lt-v3"]:   fmt.Sprintf("launch template web (%s) version 3", ltID),
	}
	if !maps.Equal(got, want) {
		t.Fatalf("images in use in us-east-1:\n got %v\nwant %v", got, want)
	}
	got, err = r.b.ImagesInUse(ctx, "eu-west-1")
	if err != nil || len(got) != 0 {
		t.Fatalf("images in use in eu-west-1: %v, %v", got, err)
	}
	if _, err := r.b.ImagesInUse(ctx, "ap-south-1"); !errors.Is(err, cloud.ErrInvalid) {
		t.Fatalf("unconfigured region: %v", err)
	}
}

// pagedEC2 serves the three listing calls in pages of one item, checking
// that every page after the first asks with the token it was given.
type pagedEC2 struct {
	instances []ec2types.Instance
	templates []ec2types.LaunchTemplate
	versions  map[string][]ec2types.LaunchTemplateVersion
	calls     map[string]int
	failOn    string // operation to answer with an error
}

// page returns item i and the token of the next page.
func page(token *string, n int) (int, *string, error) {
	i := 0
	if token != nil {
		if _, err := fmt.Sscanf(aws.ToString(token), "page-%d", &i); err != nil {
			return 0, nil, fmt.Errorf("bad token %q", aws.ToString(token))
		}
	}
	if i+1 < n {
		return i, aws.String(fmt.Sprintf("page-%d", i+1)), nil
	}
	return i, nil, nil
}

func (f *pagedEC2) fail(op string) error {
	f.calls[op]++
	if f.failOn == op {
		return &smithy.GenericAPIError{Code: "UnauthorizedOperation", Message: "not allowed"}
	}
	return nil
}

func (f *pagedEC2) DescribeInstances(ctx context.Context, in *ec2.DescribeInstancesInput, _ ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error) {
	if err := f.fail("DescribeInstances"); err != nil {
		return nil, err
	}
	if len(in.Filters) != 1 || aws.ToString(in.Filters[0].Name) != "instance-state-name" || slices.Contains(in.Filters[0].Values, "terminated") {
		return nil, fmt.Errorf("unexpected filters %v", in.Filters)
	}
	if len(f.instances) == 0 {
		return &ec2.DescribeInstancesOutput{}, nil
	}
	i, next, err := page(in.NextToken, len(f.instances))
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeInstancesOutput{Reservations: []ec2types.Reservation{{Instances: f.instances[i : i+1]}}, NextToken: next}, nil
}

func (f *pagedEC2) DescribeLaunchTemplates(ctx context.Context, in *ec2.DescribeLaunchTemplatesInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplatesOutput, error) {
	if err := f.fail("DescribeLaunchTemplates"); err != nil {
		return nil, err
	}
	if len(f.templates) == 0 {
		return &ec2.DescribeLaunchTemplatesOutput{}, nil
	}
	i, next, err := page(in.NextToken, len(f.templates))
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeLaunchTemplatesOutput{LaunchTemplates: f.templates[i : i+1], NextToken: next}, nil
}

func (f *pagedEC2) DescribeLaunchTemplateVersions(ctx context.Context, in *ec2.DescribeLaunchTemplateVersionsInput, _ ...func(*ec2.Options)) (*ec2.DescribeLaunchTemplateVersionsOutput, error) {
	if err := f.fail("DescribeLaunchTemplateVersions"); err != nil {
		return nil, err
	}
	id := aws.ToString(in.LaunchTemplateId)
	vs, ok := f.versions[id]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "InvalidLaunchTemplateId.NotFound", Message: id}
	}
	if len(in.Versions) > 0 {
		return nil, fmt.Errorf("asked for versions %v only", in.Versions)
	}
	i, next, err := page(in.NextToken, len(vs))
	if err != nil {
		return nil, err
	}
	return &ec2.DescribeLaunchTemplateVersionsOutput{LaunchTemplateVersions: vs[i : i+1], NextToken: next}, nil
}

func TestImagesInUsePages(t *testing.T) {
	inst := func(id, image, state string) ec2types.Instance {
		return ec2types.Instance{InstanceId: aws.String(id), ImageId: aws.String(image), State: &ec2types.InstanceState{Name: ec2types.InstanceStateName(state)}}
	}
	version := func(name string, n int64, image string) ec2types.LaunchTemplateVersion {
		return ec2types.LaunchTemplateVersion{LaunchTemplateName: aws.String(name), VersionNumber: aws.Int64(n),
			LaunchTemplateData: &ec2types.ResponseLaunchTemplateData{ImageId: aws.String(image)}}
	}
	f := &pagedEC2{
		instances: []ec2types.Instance{
			inst("i-1", "ami-00000001", "running"),
			inst("i-2", "ami-00000001", "pending"),
			inst("i-3", "ami-00000002", "stopped"),
		},
		templates: []ec2types.LaunchTemplate{
			{LaunchTemplateId: aws.String("lt-1")},
			{LaunchTemplateId: aws.String("lt-gone")}, // deleted between the two calls
			{LaunchTemplateId: aws.String("lt-2")},
		},
		versions: map[string][]ec2types.LaunchTemplateVersion{
			"lt-1": {version("a", 1, "ami-00000003"), version("a", 2, "ami-00000004")},
			"lt-2": {version("b", 1, "resolve:ssm:/kiln/stable/x"), version("b", 2, "ami-00000004"), {VersionNumber: aws.Int64(3)}},
		},
		calls: map[string]int{},
	}
	got, err := imagesInUse(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ami-00000001": "instance i-1 (running) and 1 more",
		"ami-00000002": "instance i-3 (stopped)",
		"ami-00000003": "launch template a (lt-1) version 1",
		"ami-00000004": "launch template a (lt-1) version 2 and 1 more",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	// One call per page: 3 instance pages, 3 template pages, 2+1+3 version
	// pages (the vanished template answers once, not found).
	for op, n := range map[string]int{"DescribeInstances": 3, "DescribeLaunchTemplates": 3, "DescribeLaunchTemplateVersions": 6} {
		if f.calls[op] != n {
			t.Errorf("%s: %d calls, want %d", op, f.calls[op], n)
		}
	}

	for _, op := range []string{"DescribeInstances", "DescribeLaunchTemplates", "DescribeLaunchTemplateVersions"} {
		f.failOn, f.calls = op, map[string]int{}
		if _, err := imagesInUse(t.Context(), f); err == nil || !strings.Contains(err.Error(), "not allowed") || !errors.Is(err, cloud.ErrAccessDenied) {
			t.Errorf("%s failing: %v", op, err)
		}
	}
}
