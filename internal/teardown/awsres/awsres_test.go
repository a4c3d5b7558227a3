package awsres

import (
	"errors"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/awsunit"
	"github.com/kiln-images/kiln/internal/teardown"
	"github.com/kiln-images/kiln/internal/teardown/teardowntest"
)

var moto *awstest.Moto

func TestMain(m *testing.M) { os.Exit(awstest.RunMain(m, &moto)) }

const region = "us-east-1"

// world is moto behind the stub, an Account on it, and direct clients.
func world(t *testing.T) (*Account, *awstest.Stub, *teardowntest.AWS) {
	t.Helper()
	moto.Reset(t)
	stub := awstest.NewStub(t, moto.URL)
	return New(awstest.Config(stub.URL, region), nil), stub, teardowntest.NewAWS(moto.URL, region)
}

func scope(dep string) map[string]string {
	return map[string]string{cloud.TagProject: "demo", cloud.TagDeployment: dep}
}

func ids(rs []deploy.Resource) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Type+" "+r.ID)
	}
	slices.Sort(out)
	return out
}

// Find lists every type by the deployment's tags, the neighbour's not;
// Empty empties a bucket of 1,050 versions and 150 delete markers (more
// than a page) and a repository; Delete removes each type, a role with
// its policy included, and a secret (scheduled for deletion); absent is
// no error.
func TestFindEmptyDelete(t *testing.T) {
	a, _, direct := world(t)
	ctx := t.Context()
	hub, other := teardowntest.Tags("demo", "hub", "app", "customer", "hub"), teardowntest.Tags("demo", "other", "app", "customer", "other")
	must(t, direct.Bucket(ctx, "hub-data", hub))
	must(t, direct.FillBucket(ctx, "hub-data", 900, 150))
	must(t, direct.Bucket(ctx, "other-data", other))
	must(t, direct.FillBucket(ctx, "other-data", 3, 1))
	must(t, direct.Repository(ctx, "hub/app", hub))
	must(t, direct.PushImages(ctx, "hub/app", 3))
	must(t, direct.Repository(ctx, "other/app", other))
	must(t, direct.LogGroup(ctx, "/hub/app", hub))
	must(t, direct.LogGroup(ctx, "/other/app", other))
	pool, err := direct.UserPool(ctx, "hub-users", hub)
	must(t, err)
	_, err = direct.UserPool(ctx, "other-users", other)
	must(t, err)
	must(t, direct.Role(ctx, "hub-worker", hub))
	must(t, direct.Role(ctx, "other-worker", other))
	secret, err := direct.Secret(ctx, "hub/token", hub)
	must(t, err)
	_, err = direct.Secret(ctx, "other/token", other)
	must(t, err)

	found, err := a.Find(ctx, region, scope("hub"))
	must(t, err)
	want := []string{"bucket hub-data", "log-group /hub/app", "repository hub/app", "role hub-worker", "secret " + secret, "user-pool " + pool}
	if got := ids(found); !slices.Equal(got, want) {
		t.Fatalf("found %v, want %v", got, want)
	}
	for _, r := range found {
		if r.Tags[cloud.TagDeployment] != "hub" || r.Region != region {
			t.Errorf("%s %s: tags %v region %s", r.Type, r.ID, r.Tags, r.Region)
		}
	}
	for _, r := range found {
		if err := a.Empty(ctx, r); err != nil {
			t.Fatalf("empty %s: %v", r.ID, err)
		}
	}
	if n, _ := direct.BucketVersions(ctx, "hub-data"); n != 0 {
		t.Errorf("hub-data holds %d versions after emptying", n)
	}
	for _, r := range found {
		if err := a.Delete(ctx, r); err != nil {
			t.Errorf("delete %s %s: %v", r.Type, r.ID, err)
		}
		if err := a.Delete(ctx, r); err != nil {
			t.Errorf("delete %s %s again: %v", r.Type, r.ID, err)
		}
	}
	if found, _ := a.Find(ctx, region, scope("hub")); len(found) != 0 {
		t.Errorf("left: %v", ids(found))
	}
	inv, err := direct.Inventory(ctx)
	must(t, err)
	for _, gone := range []string{"bucket hub-data", "repository hub/app", "log-group /hub/app", "role hub-worker", "user-pool hub-users", "secret hub/token"} {
		if slices.Contains(inv, gone) {
			t.Errorf("%s remains: %v", gone, inv)
		}
	}
	for _, w := range []string{"bucket other-data", "repository other/app", "log-group /other/app", "role other-worker", "user-pool other-users", "secret other/token"} {
		if !slices.Contains(inv, w) {
			t.Errorf("the neighbour lost %s: %v", w, inv)
		}
	}
	if n, _ := direct.BucketVersions(ctx, "other-data"); n != 5 {
		t.Errorf("the neighbour's bucket holds %d versions", n)
	}
	// A bucket that is not empty is not deleted: not yet.
	if err := a.Delete(ctx, deploy.Resource{Type: teardown.TypeBucket, ID: "other-data", Region: region}); !errors.Is(err, cloud.ErrNotYet) {
		t.Errorf("delete of a full bucket: %v", err)
	}
}

// The tag index lists resources deleted an hour ago (served by the stub,
// as AWS does; moto never does): Tagged confirms each entry with its own
// service and returns the gone ones as stale; a type kiln has no describe
// for comes back unconfirmed.
func TestTaggedConfirms(t *testing.T) {
	a, stub, direct := world(t)
	ctx := t.Context()
	hub := teardowntest.Tags("demo", "hub", "app", "customer", "hub")
	must(t, direct.Bucket(ctx, "hub-live", hub))
	v, err := direct.Volume(ctx, hub)
	must(t, err)
	for _, arn := range []string{
		"arn:aws:s3:::hub-gone", "arn:aws:logs:us-east-1:123456789012:log-group:/hub/gone",
		"arn:aws:ec2:us-east-1:123456789012:snapshot/snap-0123456789abcdef0",
		"arn:aws:cloudformation:us-east-1:123456789012:stack/kiln-demo-hub-gone/6f2c0a90-0000-0000-0000-000000000000",
		"arn:aws:ecr:us-east-1:123456789012:repository/hub/gone",
		"arn:aws:foo:us-east-1:123456789012:widget/w-1",
	} {
		stub.AddStale(region, arn, hub)
	}
	stub.AddStale(region, "arn:aws:s3:::other-gone", teardowntest.Tags("demo", "other", "app", "", ""))
	found, stale, err := a.Tagged(ctx, region, scope("hub"))
	must(t, err)
	var got []string
	for _, f := range found {
		got = append(got, f.Type+" "+f.ID+" "+map[bool]string{true: "confirmed", false: "unconfirmed"}[f.Confirmed])
	}
	slices.Sort(got)
	want := []string{"bucket hub-live confirmed", "foo:widget arn:aws:foo:us-east-1:123456789012:widget/w-1 unconfirmed", "volume " + v + " confirmed"}
	if !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	if len(stale) != 5 || slices.ContainsFunc(stale, func(s string) bool { return strings.Contains(s, "other") }) {
		t.Errorf("stale %v", stale)
	}
}

// stackKind is the stack unit kind kiln destroy uses on aws: awsunit's,
// through the stub.
func stackKind(stub *awstest.Stub) *awsunit.Stack {
	return awsunit.NewStack(awsunit.Options{Config: awstest.Config(stub.URL, region), Poll: 20 * time.Millisecond, Timeout: time.Minute})
}

// Teardown with the stack unit kind (awsunit's) on stacks seeded as
// teardowntest seeds them: it lists a deployment's stacks with their
// resources (the retained ones marked); a stack whose bucket a late
// writer refilled after it was emptied ends in DELETE_FAILED, as on AWS
// (the stub's EmulateStackFailures: moto reports such a stack deleted and
// leaves the bucket), with the bucket and the reason named; emptied
// again by this package, it goes, and what its template retains stays.
func TestStackKind(t *testing.T) {
	a, stub, direct := world(t)
	ctx := t.Context()
	stub.EmulateStackFailures()
	hub := teardowntest.Tags("demo", "hub", "data", "customer", "hub")
	stack := teardowntest.StackName("demo", "hub", "data")
	must(t, direct.Stack(ctx, stack, hub, map[string]any{
		"Data": teardowntest.BucketResource("hub-data", hub, false),
		"Repo": teardowntest.RepositoryResource("hub/data", hub),
		"Logs": teardowntest.LogGroupResource("/hub/data", true),
	}))
	must(t, direct.Stack(ctx, teardowntest.StackName("demo", "other", "data"), teardowntest.Tags("demo", "other", "data", "", ""), map[string]any{
		"Data": teardowntest.BucketResource("other-data", nil, false),
	}))
	must(t, direct.FillBucket(ctx, "hub-data", 10, 2))
	var late atomic.Int32
	stub.OnDeleteStack(func(_, name string) {
		if name == stack && late.Add(1) == 1 {
			if err := direct.Put(ctx, "hub-data", "late/object"); err != nil {
				t.Errorf("late writer: %v", err)
			}
		}
	})
	k := stackKind(stub)
	rs, err := k.Resources(ctx, region, scope("hub"))
	must(t, err)
	want := []string{"AWS::CloudFormation::Stack " + stack, "AWS::ECR::Repository hub/data", "AWS::Logs::LogGroup /hub/data", "AWS::S3::Bucket hub-data"}
	if got := ids(rs); !slices.Equal(got, want) {
		t.Fatalf("resources %v, want %v", got, want)
	}
	for _, r := range rs {
		// The log group carries no tags: its template gives it none.
		if r.Retain != (r.ID == "/hub/data") || r.ID != stack && r.Parent != stack || r.ID != "/hub/data" && r.Tags[cloud.TagUnit] != "data" {
			t.Errorf("%+v", r)
		}
	}
	u := deploy.Unit{Project: "demo", Deployment: "hub", Name: "data", Region: region}
	must(t, a.Empty(ctx, deploy.Resource{Type: teardown.TypeBucket, ID: "hub-data", Region: region}))
	err = k.Destroy(ctx, u)
	var failed *deploy.DestroyError
	if !errors.As(err, &failed) || len(failed.Failed) != 1 || failed.Failed[0].ID != "hub-data" || failed.Status != "DELETE_FAILED" ||
		!strings.Contains(err.Error(), "The bucket you tried to delete is not empty") {
		t.Fatalf("destroy of a stack whose bucket a late writer refilled: %v", err)
	}
	if late.Load() != 1 {
		t.Errorf("the late writer ran %d times", late.Load())
	}
	// DescribeStackResources shows the bucket as AWS does.
	cfn := cloudformation.NewFromConfig(awstest.Config(stub.URL, region))
	res, err := cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(stack)})
	must(t, err)
	for _, r := range res.StackResources {
		if failed := r.ResourceStatus == cfntypes.ResourceStatusDeleteFailed; failed != (aws.ToString(r.LogicalResourceId) == "Data") ||
			failed && !strings.Contains(aws.ToString(r.ResourceStatusReason), "not empty") {
			t.Errorf("%s: %s %s", aws.ToString(r.LogicalResourceId), r.ResourceStatus, aws.ToString(r.ResourceStatusReason))
		}
	}
	must(t, a.Empty(ctx, deploy.Resource{Type: teardown.TypeBucket, ID: "hub-data", Region: region}))
	must(t, k.Destroy(ctx, u))
	must(t, k.Destroy(ctx, u)) // absent
	inv, err := direct.Inventory(ctx)
	must(t, err)
	for _, gone := range []string{"stack " + stack, "bucket hub-data"} {
		if slices.Contains(inv, gone) {
			t.Errorf("%s remains", gone)
		}
	}
	for _, kept := range []string{"log-group /hub/data", "stack kiln-demo-other-data", "bucket other-data"} {
		if !slices.Contains(inv, kept) {
			t.Errorf("%s is gone", kept)
		}
	}
	if rs, _ := k.Resources(ctx, region, scope("hub")); len(rs) != 0 {
		t.Errorf("after destroy: %v", ids(rs))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A stack created with termination protection (as teardowntest seeds
// it, at CreateStack) is not deleted: the stack unit kind says so
// (deploy.ErrProtected) and leaves it, and so does DeleteStack straight
// to the stub (moto stores the protection but deletes such a stack; the
// stub's CloudFormation overlay refuses it as AWS does); SetProtected
// lifts it (moto answers UpdateTerminationProtection with 500: the
// overlay serves it), and then the stack goes.
func TestStackProtected(t *testing.T) {
	_, stub, direct := world(t)
	ctx := t.Context()
	stub.EmulateStackFailures()
	hub := teardowntest.Tags("demo", "hub", "web", "", "")
	stack := teardowntest.StackName("demo", "hub", "web")
	must(t, direct.ProtectedStack(ctx, stack, hub, map[string]any{"Logs": teardowntest.LogGroupResource("/hub/web", false)}))
	k := stackKind(stub)
	u := deploy.Unit{Project: "demo", Deployment: "hub", Name: "web", Region: region}
	if err := k.Destroy(ctx, u); !errors.Is(err, deploy.ErrProtected) {
		t.Fatalf("destroy of a protected stack: %v", err)
	}
	// Straight to the stub's CloudFormation, as any client would.
	cfn := cloudformation.NewFromConfig(awstest.Config(stub.URL, region))
	if _, err := cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(stack)}); err == nil || !strings.Contains(err.Error(), "TerminationProtection is enabled") {
		t.Errorf("DeleteStack of a protected stack: %v", err)
	}
	inv, err := direct.Inventory(ctx)
	must(t, err)
	if !slices.Contains(inv, "stack "+stack) {
		t.Fatal("the protected stack is gone")
	}
	var p deploy.Protector = k
	must(t, p.SetProtected(ctx, u, false))
	must(t, k.Destroy(ctx, u))
	inv, err = direct.Inventory(ctx)
	must(t, err)
	if slices.Contains(inv, "stack "+stack) || slices.Contains(inv, "log-group /hub/web") {
		t.Errorf("after lifting the protection: %v", inv)
	}
	if err := p.SetProtected(ctx, u, false); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("protection of an absent stack: %v", err)
	}
}
