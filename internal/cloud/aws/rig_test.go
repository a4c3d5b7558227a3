package aws

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

// motoServer is the one moto of this test binary; each test resets it.
var motoServer *awstest.Moto

func TestMain(m *testing.M) { os.Exit(awstest.RunMain(m, &motoServer)) }

// testRegions are the regions the rig configures.
var testRegions = []string{"us-east-1", "us-west-2", "eu-west-1"}

// rig is one test's world: a reset moto, the stub and the fault proxy in
// front of it, the environment pointing the SDK at the proxy, and a
// backend made the way kiln makes it.
type rig struct {
	t      *testing.T
	b      *Backend
	stub   *awstest.Stub
	faults *awstest.Faults
	cfg    config.AWSBackend
}

type rigOption func(*config.AWSBackend, *[]Option)

func withConfig(fn func(*config.AWSBackend)) rigOption {
	return func(c *config.AWSBackend, _ *[]Option) { fn(c) }
}

func newRig(t *testing.T, opts ...rigOption) *rig {
	t.Helper()
	motoServer.Reset(t)
	stub := awstest.NewStub(t, motoServer.URL)
	faults := awstest.NewFaults(t, stub.URL, 42)
	awstest.Env(t, faults.URL)
	cfg := config.AWSBackend{
		AllowedAccounts: []string{awstest.Account},
		BuildTimeout:    config.Duration(30 * time.Second),
		CopyTimeout:     config.Duration(30 * time.Second),
	}
	bopts := []Option{
		WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithPollInterval(5*time.Millisecond, 40*time.Millisecond),
		WithRetryMaxBackoff(20 * time.Millisecond),
	}
	for _, o := range opts {
		o(&cfg, &bopts)
	}
	b, err := New(t.Context(), cfg, testRegions, bopts...)
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, b: b, stub: stub, faults: faults, cfg: cfg}
}

// Direct clients reach moto without the stub or the fault proxy, for the
// tests' own setup and checks.
func (r *rig) ec2(region string) *ec2.Client {
	return ec2.NewFromConfig(awstest.Config(motoServer.URL, region))
}

func (r *rig) ssm(region string) *ssm.Client {
	return ssm.NewFromConfig(awstest.Config(motoServer.URL, region))
}

func (r *rig) s3(region string) *s3.Client {
	return s3.NewFromConfig(awstest.Config(motoServer.URL, region), func(o *s3.Options) { o.UsePathStyle = true })
}

func (r *rig) cfn(region string) *cloudformation.Client {
	return cloudformation.NewFromConfig(awstest.Config(motoServer.URL, region))
}

// seedImage makes an available image in region directly in moto (from a
// throwaway instance), tagged at creation.
func seedImage(t *testing.T, c *ec2.Client, name string, tags map[string]string) ec2types.Image {
	t.Helper()
	ctx := t.Context()
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeT3Micro,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatalf("seed image %s: run instance: %v", name, err)
	}
	id := aws.ToString(run.Instances[0].InstanceId)
	in := &ec2.CreateImageInput{InstanceId: aws.String(id), Name: aws.String(name)}
	if len(tags) > 0 {
		in.TagSpecifications = tagSpecs(tags, ec2types.ResourceTypeImage)
	}
	out, err := c.CreateImage(ctx, in)
	if err != nil {
		t.Fatalf("seed image %s: %v", name, err)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Fatal(err)
	}
	return describeOne(t, c, aws.ToString(out.ImageId))
}

func describeOne(t *testing.T, c *ec2.Client, id string) ec2types.Image {
	t.Helper()
	d, err := c.DescribeImages(t.Context(), &ec2.DescribeImagesInput{ImageIds: []string{id}})
	if err != nil || len(d.Images) != 1 {
		t.Fatalf("describe image %s: %v (%d images)", id, err, len(d.Images))
	}
	return d.Images[0]
}

// ownImages returns the account's images in a region, straight from moto.
func ownImages(t *testing.T, c *ec2.Client, filters ...ec2types.Filter) []ec2types.Image {
	t.Helper()
	out, err := c.DescribeImages(t.Context(), &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: filters})
	if err != nil {
		t.Fatal(err)
	}
	return out.Images
}

func snapshotTags(t *testing.T, c *ec2.Client, id string) map[string]string {
	t.Helper()
	out, err := c.DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
	if err != nil || len(out.Snapshots) != 1 {
		t.Fatalf("describe snapshot %s: %v", id, err)
	}
	return tagMap(out.Snapshots[0].Tags)
}

func runTags(extra ...string) map[string]string {
	tags := map[string]string{
		cloud.TagManaged: "true",
		cloud.TagAssetID: "kiln-20261121-abc123",
		cloud.TagUseCase: "ci-runner",
		"cost-center":    "images",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		tags[extra[i]] = extra[i+1]
	}
	return tags
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
