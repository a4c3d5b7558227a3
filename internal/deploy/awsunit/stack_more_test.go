package awsunit

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
)

// changeSetTypes lists the ChangeSetType of every CreateChangeSet the stub
// saw.
func (w *world) changeSetTypes() []string {
	var out []string
	for _, c := range w.stub.Requests("cloudformation", "CreateChangeSet") {
		out = append(out, c.Form.Get("ChangeSetType"))
	}
	return out
}

// pendingChangeSets lists the stack's change sets that were not executed.
func (w *world) pendingChangeSets(t *testing.T, stack string) []string {
	t.Helper()
	out, err := w.cfn().ListChangeSets(t.Context(), &cloudformation.ListChangeSetsInput{StackName: aws.String(stack)})
	if err != nil {
		if errors.Is(classify(err), cloud.ErrNotFound) {
			return nil
		}
		t.Fatal(err)
	}
	var names []string
	for _, s := range out.Summaries {
		if aws.ToString(s.StackName) == stack && s.ExecutionStatus != cfntypes.ExecutionStatusExecuteComplete {
			names = append(names, aws.ToString(s.ChangeSetName))
		}
	}
	return names
}

func TestStackPlanMakesAndDropsChangeSets(t *testing.T) {
	w := newWorld(t)
	k := NewStack(w.o)
	tmpl := w.write(t, "app.yaml", appTemplate)
	u := w.unit("dev", "app", tmpl, appParams("one"), secretInputs)
	name, _ := physicalName(u)

	p, err := k.Plan(t.Context(), u)
	if err != nil || p.Action != deploy.ActionCreate || !slices.Contains(p.Changes, "add AWS::S3::Bucket Bucket") {
		t.Fatalf("plan of a new stack: %+v, %v", p, err)
	}
	if got := w.changeSetTypes(); !slices.Equal(got, []string{"CREATE"}) {
		t.Errorf("change set types %v, want [CREATE]", got)
	}
	// Planning leaves nothing: not the change set, not the empty stack it
	// made.
	if _, err := w.cfn().DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(name)}); !errors.Is(classify(err), cloud.ErrNotFound) {
		t.Errorf("after a plan the stack exists: %v", err)
	}

	if _, err := k.Apply(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	changed := w.unit("dev", "app", tmpl, appParams("two"), secretInputs)
	p, err = k.Plan(t.Context(), changed)
	if err != nil || p.Action != deploy.ActionUpdate {
		t.Fatalf("plan of a change: %+v, %v", p, err)
	}
	if !slices.Contains(p.Changes, "parameter Setting: one -> two") || !slices.Contains(p.Changes, "parameter Token (NoEcho) is passed again; its value is not shown") {
		t.Errorf("plan of a change lists %q", p.Changes)
	}
	if got := w.changeSetTypes(); !slices.Equal(got, []string{"CREATE", "CREATE", "UPDATE"}) {
		t.Errorf("change set types %v, want CREATE (plan), CREATE (apply), UPDATE (plan)", got)
	}
	if left := w.pendingChangeSets(t, name); len(left) > 0 {
		t.Errorf("change sets left after planning: %v", left)
	}
	param, err := ssm.NewFromConfig(w.cfg()).GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String("/" + name + "/setting")})
	if err != nil || aws.ToString(param.Parameter.Value) != "one" {
		t.Errorf("a plan changed the stack: %v %v", param, err)
	}
	if st := w.stack(t, name); tagMap(st.Tags)[tagToken] != u.Token {
		t.Errorf("a plan changed the stack's token: %v", tagMap(st.Tags))
	}

	// A changed template file is a change, though the token is the same.
	os.WriteFile(filepath.Join(w.dir, tmpl), []byte(strings.Replace(appTemplate, "RetentionInDays: 7", "RetentionInDays: 7 # a week", 1)), 0o644)
	if p, err := k.Plan(t.Context(), u); err != nil || p.Action != deploy.ActionUpdate || !strings.HasPrefix(p.Changes[0], "template ") {
		t.Errorf("plan after the template changed: %+v, %v", p, err)
	}
	st, err := k.Status(t.Context(), u)
	if err != nil || !slices.ContainsFunc(st.Drift, func(s string) bool { return strings.Contains(s, "template app.yaml changed") }) {
		t.Errorf("status after the template changed: %+v, %v", st, err)
	}
}

func TestStackSecrets(t *testing.T) {
	w := newWorld(t)
	k := NewStack(w.o)
	secret := secretInputs["token"].Text
	// A secret into a parameter CloudFormation would show: refused.
	plain := w.write(t, "plain.yaml", strings.Replace(appTemplate, "Token: {Type: String, NoEcho: true}", "Token: {Type: String}", 1))
	u := w.unit("dev", "app", plain, appParams("one"), secretInputs)
	for what, err := range map[string]error{
		"plan":  func() error { _, err := k.Plan(t.Context(), u); return err }(),
		"apply": func() error { _, err := k.Apply(t.Context(), u); return err }(),
	} {
		if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), "stack.parameters.Token gets a secret") || strings.Contains(err.Error(), secret) {
			t.Errorf("%s with a secret into a plain parameter: %v", what, err)
		}
	}
	if len(w.stub.Requests("cloudformation", "CreateChangeSet")) > 0 {
		t.Error("a refused unit made a change set")
	}

	// Into a NoEcho parameter it goes to CloudFormation and nowhere else.
	tmpl := w.write(t, "app.yaml", appTemplate)
	u = w.unit("dev", "app", tmpl, appParams("one"), secretInputs)
	p, err := k.Plan(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	st, err := k.Apply(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	name, _ := physicalName(u)
	stack := w.stack(t, name)
	for what, text := range map[string]string{
		"plan": strings.Join(p.Changes, "\n"), "outputs": strings.Join(slices.Collect(mapsValues(st.Outputs)), "\n"),
		"stack tags": strings.Join(slices.Collect(mapsValues(tagMap(stack.Tags))), "\n"), "change set": w.stub.Requests("cloudformation", "CreateChangeSet")[0].Form.Get("Description"),
	} {
		if strings.Contains(text, secret) {
			t.Errorf("the secret is in the %s", what)
		}
	}
	// CloudFormation shows it masked (the stub, as AWS); moto, which does
	// not mask NoEcho, shows that it arrived.
	shown := map[string]string{}
	for _, p := range stack.Parameters {
		shown[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	if shown["Token"] != "****" || shown["Setting"] != "one" {
		t.Errorf("the stack's parameters as described: %v", shown)
	}
	raw, err := cloudformation.NewFromConfig(w.cfg()).DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	delivered := false
	for _, p := range raw.Stacks[0].Parameters {
		delivered = delivered || aws.ToString(p.ParameterKey) == "Token" && aws.ToString(p.ParameterValue) == secret
	}
	if !delivered {
		t.Errorf("the secret did not reach the stack: %v", raw.Stacks[0].Parameters)
	}
}

func mapsValues(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func TestStackTagsWhatCloudFormationDidNot(t *testing.T) {
	w := newWorld(t)
	k := NewStack(w.o)
	tmpl := w.write(t, "app.yaml", appTemplate)
	u := w.unit("dev", "app", tmpl, appParams("one"), secretInputs)
	if _, err := k.Apply(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	// Read every resource's tags straight from its service in moto.
	read := func(u deploy.Unit) map[string]map[string]string {
		name, _ := physicalName(u)
		res, err := w.cfn().DescribeStackResources(t.Context(), &cloudformation.DescribeStackResourcesInput{StackName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]map[string]string{}
		for _, r := range res.StackResources {
			id := aws.ToString(r.PhysicalResourceId)
			m := map[string]string{}
			switch aws.ToString(r.ResourceType) {
			case "AWS::S3::Bucket":
				o, err := w.s3().GetBucketTagging(t.Context(), &s3.GetBucketTaggingInput{Bucket: aws.String(id)})
				if err == nil {
					for _, t := range o.TagSet {
						m[aws.ToString(t.Key)] = aws.ToString(t.Value)
					}
				}
			case "AWS::Logs::LogGroup":
				o, _ := cloudwatchlogs.NewFromConfig(w.cfg()).ListTagsForResource(t.Context(), &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:logs:us-east-1:123456789012:log-group:" + id)})
				if o != nil {
					m = o.Tags
				}
			case "AWS::ECR::Repository":
				o, _ := ecr.NewFromConfig(w.cfg()).ListTagsForResource(t.Context(), &ecr.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:ecr:us-east-1:123456789012:repository/" + id)})
				if o != nil {
					for _, t := range o.Tags {
						m[aws.ToString(t.Key)] = aws.ToString(t.Value)
					}
				}
			case "AWS::SSM::Parameter":
				o, _ := ssm.NewFromConfig(w.cfg()).ListTagsForResource(t.Context(), &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(id)})
				if o != nil {
					for _, t := range o.TagList {
						m[aws.ToString(t.Key)] = aws.ToString(t.Value)
					}
				}
			case typeInstance:
				o, _ := w.ec2().DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
				m = ec2Tags(o.Reservations[0].Instances[0].Tags)
			}
			out[aws.ToString(r.LogicalResourceId)] = m
		}
		return out
	}
	got := read(u)
	if len(got) != 5 {
		t.Fatalf("read the tags of %d resources, want 5", len(got))
	}
	for logical, tags := range got {
		if miss := missingTags(tags, u.Tags); len(miss) > 0 {
			t.Errorf("%s lacks %v (has %v)", logical, miss, tags)
		}
	}
	if n := w.stub.Calls("s3", "PUT"); n == 0 {
		t.Error("kiln never tagged the bucket (moto passes no stack tags on to it)")
	}
	// The next release's tags replace the old values.
	next := w.unit("dev", "app", tmpl, appParams("two"), secretInputs)
	next.Release = "2.0-ef01"
	next.Tags[cloud.TagRelease] = next.Release
	if _, err := k.Apply(t.Context(), next); err != nil {
		t.Fatal(err)
	}
	for logical, tags := range read(next) {
		if tags[cloud.TagRelease] != "2.0-ef01" {
			t.Errorf("%s: kiln:release = %q after the next release", logical, tags[cloud.TagRelease])
		}
	}
	name, _ := physicalName(u)
	if st := tagMap(w.stack(t, name).Tags); st[cloud.TagRelease] != "2.0-ef01" || st[tagToken] != next.Token {
		t.Errorf("stack tags after the update: %v", st)
	}
}

func TestStackTerminationProtection(t *testing.T) {
	w := newWorld(t)
	k := NewStack(w.o)
	tmpl := w.write(t, "app.yaml", appTemplate)
	u := w.unit("prod", "app", tmpl, appParams("one"), secretInputs)
	u.Protect = true
	name, _ := physicalName(u)
	if _, err := k.Apply(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(w.stack(t, name).EnableTerminationProtection) {
		t.Fatal("a protected deployment's stack has no termination protection")
	}
	if p, err := k.Plan(t.Context(), u); err != nil || p.Action != deploy.ActionNone {
		t.Errorf("plan after apply: %+v %v", p, err)
	}
	err := k.Destroy(t.Context(), deploy.Unit{Deployment: "prod", Name: "app", Region: region, Tags: u.Tags})
	if !errors.Is(err, deploy.ErrProtected) {
		t.Fatalf("destroy of a protected stack: %v", err)
	}
	// DeleteStack itself is refused too, as AWS does.
	if _, err := w.cfn().DeleteStack(t.Context(), &cloudformation.DeleteStackInput{StackName: aws.String(name)}); err == nil || !strings.Contains(err.Error(), "TerminationProtection is enabled") {
		t.Errorf("DeleteStack of a protected stack: %v", err)
	}
	if w.stack(t, name) == nil {
		t.Fatal("the protected stack is gone")
	}
	// protect: false again: the plan says so and apply lifts it.
	u.Protect = false
	if p, err := k.Plan(t.Context(), u); err != nil || !slices.Equal(p.Changes, []string{"termination protection off"}) {
		t.Errorf("plan after protect was turned off: %+v %v", p, err)
	}
	if err := k.SetProtected(t.Context(), u, false); err != nil {
		t.Fatal(err)
	}
	if err := k.Destroy(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	if w.stack(t, name) != nil {
		t.Error("the stack is still there")
	}
}

func TestStackFailedCreateRollsBack(t *testing.T) {
	w := newWorld(t)
	w.stub.EmulateStackFailures()
	k := NewStack(w.o)
	bad := strings.Replace(appTemplate, "  Bucket:\n    Type: AWS::S3::Bucket\n", "  Bucket:\n    Type: AWS::S3::Bucket\n    Properties: {BucketName: Not_A_Bucket}\n", 1)
	tmpl := w.write(t, "app.yaml", bad)
	u := w.unit("dev", "app", tmpl, appParams("one"), secretInputs)
	_, err := k.Apply(t.Context(), u)
	if err == nil || !strings.Contains(err.Error(), "ROLLBACK_COMPLETE") || !strings.Contains(err.Error(), "AWS::S3::Bucket Bucket: Resource handler returned message: \"Invalid bucket name: Not_A_Bucket") {
		t.Fatalf("apply of a stack whose bucket fails: %v", err)
	}
	if cloud.Retryable(err) {
		t.Error("a rolled back create is retryable")
	}
	st, err := k.Status(t.Context(), u)
	if err != nil || st.State != deploy.UnitFailed || !strings.Contains(st.Problem, "ROLLBACK_COMPLETE") {
		t.Errorf("status after the rollback: %+v, %v", st, err)
	}
	if p, err := k.Plan(t.Context(), u); err != nil || p.Action != deploy.ActionReplace {
		t.Errorf("plan after the rollback: %+v, %v", p, err)
	}
	// Fixed, the next apply deletes the rolled back stack and makes it.
	w.write(t, "app.yaml", appTemplate)
	u = w.unit("dev", "app", tmpl, appParams("one"), secretInputs)
	if st, err := k.Apply(t.Context(), u); err != nil || st.State != deploy.UnitRunning {
		t.Fatalf("apply after the fix: %+v, %v", st, err)
	}
	if n := len(w.stub.Requests("cloudformation", "DeleteStack")); n != 1 {
		t.Errorf("%d DeleteStack calls, want 1 (the rolled back stack)", n)
	}
}

func TestStackDeleteFailed(t *testing.T) {
	w := newWorld(t)
	w.stub.EmulateStackFailures()
	k := NewStack(w.o)
	tmpl := w.write(t, "app.yaml", appTemplate)
	u := w.unit("dev", "app", tmpl, appParams("one"), secretInputs)
	st, err := k.Apply(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	bucket := st.Outputs["BucketName"]
	if _, err := w.s3().PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("data"), Body: strings.NewReader("x")}); err != nil {
		t.Fatal(err, tail(motoServer.Output()))
	}
	// Destroy needs only the unit's deployment, name, region and tags.
	gone := deploy.Unit{Deployment: "dev", Name: "app", Region: region, Tags: u.Tags}
	err = k.Destroy(t.Context(), gone)
	var de *deploy.DestroyError
	if !errors.As(err, &de) {
		t.Fatalf("destroy with a bucket that is not empty: %v", err)
	}
	if de.Status != "DELETE_FAILED" || len(de.Failed) != 1 || de.Failed[0].Type != "AWS::S3::Bucket" || de.Failed[0].ID != bucket ||
		de.Failed[0].LogicalID != "Bucket" || !strings.Contains(de.Failed[0].Reason, "The bucket you tried to delete is not empty") {
		t.Errorf("destroy error %+v", de)
	}
	if cloud.Retryable(err) {
		t.Error("DELETE_FAILED is retryable as it is")
	}
	if st, err := k.Status(t.Context(), gone); err != nil || st.State != deploy.UnitFailed || !strings.Contains(st.Problem, "DELETE_FAILED") {
		t.Errorf("status of the stack that failed to delete: %+v, %v", st, err)
	}
	// Emptied, it goes.
	if _, err := w.s3().DeleteObject(t.Context(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("data")}); err != nil {
		t.Fatal(err)
	}
	if err := k.Destroy(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	if rs, err := k.Resources(t.Context(), region, scope(u)); err != nil || len(rs) != 0 {
		t.Errorf("resources after destroy: %+v, %v", rs, err)
	}
}

func TestStackResourcesRetain(t *testing.T) {
	w := newWorld(t)
	k := NewStack(w.o)
	kept := strings.Replace(appTemplate, "  Logs:\n    Type: AWS::Logs::LogGroup\n", "  Logs:\n    Type: AWS::Logs::LogGroup\n    DeletionPolicy: Retain\n", 1)
	tmpl := w.write(t, "app.yaml", kept)
	u := w.unit("dev", "app", tmpl, appParams("one"), secretInputs)
	if _, err := k.Apply(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	rs, err := k.Resources(t.Context(), region, map[string]string{cloud.TagDeployment: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	name, _ := physicalName(u)
	var group string
	types := map[string]bool{}
	for _, r := range rs {
		types[r.Type] = true
		if r.Type != "AWS::CloudFormation::Stack" && r.Parent != name {
			t.Errorf("%s %s: parent %q, want the stack", r.Type, r.ID, r.Parent)
		}
		if r.Retain != (r.Type == "AWS::Logs::LogGroup") {
			t.Errorf("%s %s: retain %v", r.Type, r.ID, r.Retain)
		}
		if r.Type == "AWS::Logs::LogGroup" {
			group = r.ID
		}
	}
	if len(rs) != 6 || !types["AWS::CloudFormation::Stack"] || !types[typeInstance] {
		t.Errorf("resources: %+v", rs)
	}
	if err := k.Destroy(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	// The retained log group stays, with the tags teardown finds it by.
	o, err := cloudwatchlogs.NewFromConfig(w.cfg()).ListTagsForResource(t.Context(), &cloudwatchlogs.ListTagsForResourceInput{ResourceArn: aws.String("arn:aws:logs:us-east-1:123456789012:log-group:" + group)})
	if err != nil || o.Tags[cloud.TagDeployment] != "dev" {
		t.Errorf("the retained log group %s: %v, %v", group, o, err)
	}
}

func TestStackInstanceTerminatedBehindItsBack(t *testing.T) {
	w := newWorld(t)
	k := NewStack(w.o)
	tmpl := w.write(t, "app.yaml", appTemplate)
	u := w.unit("dev", "app", tmpl, appParams("one"), secretInputs)
	if _, err := k.Apply(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	name, _ := physicalName(u)
	res, _ := w.cfn().DescribeStackResource(t.Context(), &cloudformation.DescribeStackResourceInput{StackName: aws.String(name), LogicalResourceId: aws.String("Web")})
	id := aws.ToString(res.StackResourceDetail.PhysicalResourceId)
	w.ec2().TerminateInstances(t.Context(), &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	st, err := k.Status(t.Context(), u)
	if err != nil || st.State != deploy.UnitFailed || !strings.Contains(st.Problem, "instance "+id+" (Web) is terminated") {
		t.Errorf("status: %+v, %v", st, err)
	}
	if _, err := k.Apply(t.Context(), u); err == nil || !strings.Contains(err.Error(), "was terminated outside CloudFormation") {
		t.Errorf("apply: %v", err)
	}
	if err := k.Destroy(t.Context(), u); err != nil {
		t.Fatal(err)
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return s[len(s)-3000:]
	}
	return s
}

// A unit destroyed and applied again with the same token names its change
// set as before: the new stack's change set must not be confused with the
// deleted stack's (moto looks change sets up across all stacks, deleted
// ones included; the stub scopes them to the live stack, as AWS does).
func TestStackAgainAfterDestroy(t *testing.T) {
	w := newWorld(t)
	k := NewStack(w.o)
	u := w.unit("dev", "app", w.write(t, "app.yaml", appTemplate), appParams("one"), secretInputs)
	name, _ := physicalName(u)
	first, err := k.Apply(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	firstID := aws.ToString(w.stack(t, name).StackId)
	if err := k.Destroy(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	again, err := k.Apply(t.Context(), u)
	if err != nil {
		t.Fatalf("apply after destroy: %v", err)
	}
	st := w.stack(t, name)
	if st == nil || aws.ToString(st.StackId) == firstID || st.StackStatus != cfntypes.StackStatusCreateComplete {
		t.Fatalf("after destroy and apply: stack %+v (the first was %s)", st, firstID)
	}
	if again.Outputs["BucketName"] == "" || again.Outputs["BucketName"] == first.Outputs["BucketName"] {
		t.Errorf("outputs of the second stack %v, of the first %v", again.Outputs, first.Outputs)
	}
	out, err := w.cfn().ListChangeSets(t.Context(), &cloudformation.ListChangeSetsInput{StackName: st.StackId})
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range out.Summaries {
		if aws.ToString(cs.StackId) != aws.ToString(st.StackId) {
			t.Errorf("ListChangeSets of the live stack lists %s of %s", aws.ToString(cs.ChangeSetName), aws.ToString(cs.StackId))
		}
	}
	// A second change set of the same name is refused, as on AWS.
	_, err = w.cfn().CreateChangeSet(t.Context(), &cloudformation.CreateChangeSetInput{
		StackName: aws.String(name), ChangeSetName: out.Summaries[0].ChangeSetName, ChangeSetType: cfntypes.ChangeSetTypeUpdate,
		TemplateBody: aws.String(appTemplate),
	})
	if !isCode(err, "AlreadyExistsException") {
		t.Errorf("a second change set of the same name: %v", err)
	}
}
