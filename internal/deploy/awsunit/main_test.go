package awsunit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
)

var motoServer *awstest.Moto

func TestMain(m *testing.M) { os.Exit(awstest.RunMain(m, &motoServer)) }

const region = "us-east-1"

// world is moto behind the wire-format stub, with an image to boot.
type world struct {
	stub  *awstest.Stub
	image string
	dir   string
	o     Options
}

func newWorld(t *testing.T) *world {
	t.Helper()
	motoServer.Reset(t)
	w := &world{stub: awstest.NewStub(t, motoServer.URL), dir: t.TempDir()}
	w.o = Options{Config: awstest.Config(w.stub.URL, region), Poll: 10 * time.Millisecond, Timeout: time.Minute}
	// moto loads a service's code on its first request; pay for that here.
	ctx := t.Context()
	cloudwatchlogs.NewFromConfig(w.cfg()).DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{})
	ecr.NewFromConfig(w.cfg()).DescribeRepositories(ctx, &ecr.DescribeRepositoriesInput{})
	c := w.ec2()
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: run.Instances[0].InstanceId, Name: aws.String("app-1.0")})
	if err != nil {
		t.Fatal(err)
	}
	c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(run.Instances[0].InstanceId)}})
	w.image = aws.ToString(img.ImageId)
	return w
}

// cfg talks to moto directly, not through the stub: the tests' own reads.
func (w *world) cfg() aws.Config { return awstest.Config(motoServer.URL, region) }

func (w *world) ec2() *ec2.Client { return ec2.NewFromConfig(w.cfg()) }

func (w *world) s3() *s3.Client {
	return s3.NewFromConfig(w.cfg(), func(o *s3.Options) { o.UsePathStyle = true })
}

// cfn reads CloudFormation through the stub, as AWS answers.
func (w *world) cfn() *cloudformation.Client {
	return cloudformation.NewFromConfig(awstest.Config(w.stub.URL, region))
}

func (w *world) write(t *testing.T, name, text string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(w.dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return name
}

// unit is a stack unit of deployment dep with template file tmpl.
func (w *world) unit(dep, name, tmpl string, params map[string]string, inputs map[string]deploy.Value) deploy.Unit {
	u := deploy.Unit{
		Project: "proj", Deployment: dep, Name: name, Region: region,
		Config:  &config.Unit{Name: name, Stack: &config.StackUnit{Template: tmpl, Parameters: params}},
		Image:   deploy.Image{ID: w.image, Name: "app-1.0", Region: region, Arch: "x86_64", Version: "1.0"},
		Release: "1.0-abcd", Inputs: inputs, Outputs: map[string]string{},
		Tags: deploy.UnitTags("proj", dep, name, "1.0-abcd", "team", dep),
		Dir:  w.dir,
	}
	u.Token = token(u)
	return u
}

// token stands in for the core's token: a digest of what the unit is.
func token(u deploy.Unit) string {
	return tokenOf(u.Deployment, u.Name, u.Image.ID, u.Config, u.Protect)
}

func (w *world) stack(t *testing.T, name string) *cfntypes.Stack {
	t.Helper()
	out, err := w.cfn().DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil || len(out.Stacks) == 0 {
		return nil
	}
	return &out.Stacks[0]
}

func ctxT(t *testing.T) context.Context { return t.Context() }
