package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/awsunit"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/manifest"
)

// appTemplate is the deployments' CloudFormation template: the image the
// release runs (the parameter its instances would read), storage and
// logs, a secret the template masks, and the URL the app answers on.
// Moto runs nothing, so the URL points at the test's own server, which
// answers for the stack from what moto says the stack runs.
const appTemplate = `AWSTemplateFormatVersion: "2010-09-09"
Description: the example app
Parameters:
  ImageId: {Type: String}
  Endpoint: {Type: String}
  ApiToken: {Type: String, NoEcho: true}
Resources:
  ImageParam:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/image"
      Type: String
      Value: !Ref ImageId
  Assets:
    Type: AWS::S3::Bucket
  Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      RetentionInDays: 14
Outputs:
  URL:
    Value: !Sub "${Endpoint}/${AWS::Region}/${AWS::StackName}"
  Assets:
    Value: !Ref Assets
`

const deploymentsYAML = `channels: {latest: {}}
deployments:
  dev:
    region: us-east-1
    image: {use_case: ci-runner, channel: latest}
    units:
      app:
        stack:
          template: cfn/app.yaml
          parameters: {ImageId: "{image_id}", Endpoint: "{inputs.endpoint}", ApiToken: "{inputs.api_token}"}
      worker:
        after: [app]
        instance: {instance_type: t3.micro}
    inputs:
      endpoint: {value: "%s"}
      api_token: {secret: {env: KILN_APP_TOKEN}}
    checks:
      - name: health
        http: {url: "{app.URL}/health", body: "^ok"}
      - name: version
        http: {url: "{app.URL}/version", json_field: version, equals: "{version}"}
        count: 2
        interval: 10ms
  staging:
    extends: dev
    region: us-west-2
    promote: {from: dev}
`

const appSecret = "app-token-51c9e0"

// appServer plays the app the stacks run: GET /REGION/STACK/health and
// /version answer for the stack as moto has it, with the version baked
// into the image its ImageParam names (served, by image id).
type appServer struct {
	mu     sync.Mutex
	served map[string]string // image id -> the version its app answers
}

func (a *appServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	region, stack, what := parts[0], parts[1], parts[2]
	p, err := ssm.NewFromConfig(awstest.Config(motoServer.URL, region)).GetParameter(r.Context(), &ssm.GetParameterInput{Name: aws.String("/" + stack + "/image")})
	if err != nil {
		http.Error(w, "no such app: "+err.Error(), http.StatusNotFound)
		return
	}
	a.mu.Lock()
	version, ok := a.served[aws.ToString(p.Parameter.Value)]
	a.mu.Unlock()
	if !ok {
		http.Error(w, "the image does not boot", http.StatusServiceUnavailable)
		return
	}
	switch what {
	case "health":
		fmt.Fprintln(w, "ok")
	case "version":
		json.NewEncoder(w).Encode(map[string]string{"version": version})
	default:
		http.NotFound(w, r)
	}
}

func (a *appServer) serve(image, version string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.served[image] = version
}

// awsDeployWorld is the aws world with a release and deployments of it.
type awsDeployWorld struct {
	*awsWorld
	app  *appServer
	said strings.Builder // everything kiln printed, for the secrets check
}

// kinds are the aws unit kinds, for the test's own resets (what kiln
// destroy will do).
func (w *awsDeployWorld) kinds() (*awsunit.Stack, *awsunit.Instance) {
	o := awsunit.Options{Config: awstest.Config(w.stub.URL, "us-east-1"), Poll: 10 * time.Millisecond, Timeout: time.Minute}
	return awsunit.NewStack(o), awsunit.NewInstance(o)
}

// reset removes a deployment, its units and its record, so the next kill
// point starts where the first deploy did.
func (w *awsDeployWorld) reset(t *testing.T, dep, region string) {
	t.Helper()
	tags := map[string]string{cloud.TagProject: "grit"}
	stack, inst := w.kinds()
	for _, unit := range []string{"worker", "app"} {
		u := deploy.Unit{Project: "grit", Deployment: dep, Name: unit, Region: region, Tags: tags}
		var err error
		if unit == "app" {
			err = stack.Destroy(context.Background(), u)
		} else {
			err = inst.Destroy(context.Background(), u)
		}
		if err != nil {
			t.Fatalf("reset %s: destroy %s: %v", dep, unit, err)
		}
	}
	os.Remove(record.Path(w.dir, dep))
	if left := w.deploymentLeftovers(t, dep, region, 0); len(left) > 0 {
		t.Fatalf("reset %s left %v", dep, left)
	}
}

// deploymentLeftovers checks, with direct reads of moto, that deployment
// dep has exactly want stacks (each complete, with one worker instance
// running) and nothing else of it; and that nothing kiln made in region
// is untagged: no stack waiting in REVIEW_IN_PROGRESS, no change set
// left unexecuted, no instance, volume or bucket without its tags.
func (w *awsDeployWorld) deploymentLeftovers(t *testing.T, dep, region string, want int) []string {
	t.Helper()
	ctx := t.Context()
	var left []string
	cfn := cloudformation.NewFromConfig(awstest.Config(w.stub.URL, region))
	stacks, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range stacks.Stacks {
		tags := map[string]string{}
		for _, tg := range s.Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		name := aws.ToString(s.StackName)
		switch {
		case s.StackStatus == cfntypes.StackStatusReviewInProgress:
			left = append(left, "stack "+name+" waiting in REVIEW_IN_PROGRESS")
		case tags[cloud.TagDeployment] == dep:
			n++
			if s.StackStatus != cfntypes.StackStatusCreateComplete && s.StackStatus != cfntypes.StackStatusUpdateComplete {
				left = append(left, fmt.Sprintf("stack %s is %s", name, s.StackStatus))
			}
		}
		cs, err := cfn.ListChangeSets(ctx, &cloudformation.ListChangeSetsInput{StackName: s.StackId})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs.Summaries {
			if aws.ToString(c.StackName) == name && c.ExecutionStatus == cfntypes.ExecutionStatusAvailable {
				left = append(left, "change set "+aws.ToString(c.ChangeSetName)+" of "+name+" not executed")
			}
		}
	}
	if n != want {
		left = append(left, fmt.Sprintf("%d stacks of %s, want %d", n, dep, want))
	}
	c := w.ec2(region)
	ins, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	workers := 0
	for _, r := range ins.Reservations {
		for _, i := range r.Instances {
			tags := tagsOf(i.Tags)
			switch {
			case tags[cloud.TagDeployment] == dep:
				workers++
				if i.State.Name != ec2types.InstanceStateNameRunning {
					left = append(left, fmt.Sprintf("instance %s of %s is %s", aws.ToString(i.InstanceId), dep, i.State.Name))
				}
			case tags[cloud.TagManaged] != "true":
				left = append(left, "untagged instance "+aws.ToString(i.InstanceId))
			}
		}
	}
	if workers != want {
		left = append(left, fmt.Sprintf("%d worker instances of %s, want %d", workers, dep, want))
	}
	vols, err := c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		if tagsOf(v.Tags)[cloud.TagManaged] != "true" {
			left = append(left, "untagged volume "+aws.ToString(v.VolumeId))
		}
	}
	s3c := s3.NewFromConfig(awstest.Config(motoServer.URL, region), func(o *s3.Options) { o.UsePathStyle = true })
	buckets, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range buckets.Buckets {
		tg, err := s3c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: b.Name})
		ok := false
		if err == nil {
			for _, x := range tg.TagSet {
				ok = ok || aws.ToString(x.Key) == cloud.TagDeployment
			}
		}
		// The world's own bucket (bundles, exports) is the test's, not a
		// deployment's.
		if !ok && strings.HasPrefix(aws.ToString(b.Name), "kiln-") && aws.ToString(b.Name) != awsBucket {
			left = append(left, "untagged bucket "+aws.ToString(b.Name))
		}
	}
	return left
}

// kill is one kill point of a crash chain: the value of KILN_FAILPOINT,
// and the text of the boundary the process must die at (checked in its
// trace, so a kill that lands elsewhere fails the test).
type kill struct{ at, want string }

func at(text string) kill { return kill{"~" + text, text} }

// boundaries reads a KILN_FAILPOINT_LOG trace without its numbers.
func boundaries(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	for _, e := range events(t, path) {
		_, desc, _ := strings.Cut(e, " ")
		out = append(out, desc)
	}
	return out
}

// runTraced runs the kiln binary with a failpoint trace and extra
// environment, keeps its output for the secrets check, and returns its
// exit code and the boundaries it passed.
func (w *awsDeployWorld) runTraced(t *testing.T, env []string, args ...string) (*proc, int, []string) {
	t.Helper()
	trace := filepath.Join(t.TempDir(), "trace")
	p, code := runKiln(t, append(env, "KILN_FAILPOINT_LOG="+trace), args...)
	w.said.WriteString(p.stdout.String() + p.stderr.String())
	var passed []string
	if _, err := os.Stat(trace); err == nil {
		passed = boundaries(t, trace)
	}
	return p, code, passed
}

// run runs kiln in-process on the world's project, keeping its output for
// the secrets check.
func (w *awsDeployWorld) run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	out, stderr, code := w.kiln(t, args...)
	w.said.WriteString(out + stderr)
	return out, stderr, code
}

// crashChain runs kiln with args killed at each of kills in turn, each
// rerun killed further on, then lets it finish. It checks that each kill
// landed on the boundary meant, and with direct reads that dep ends with
// one stack and one running instance, all tagged, nothing left over, and a
// deployed, verified record. It returns the boundaries killed at.
func (w *awsDeployWorld) crashChain(t *testing.T, tally *crashTally, dep, region string, args []string, kills []kill) []string {
	t.Helper()
	var hit []string
	for _, k := range kills {
		p, code, passed := w.runTraced(t, []string{"KILN_FAILPOINT=" + k.at}, args...)
		if code != -1 {
			t.Fatalf("kiln %v was not killed at %q: exit %d\n%s\nboundaries passed:\n%s", args, k.at, code, p.stderr.String(), strings.Join(passed, "\n"))
		}
		if last := passed[len(passed)-1]; !strings.Contains(last, k.want) {
			t.Fatalf("kiln %v with KILN_FAILPOINT=%s died at %q, want %q", args, k.at, last, k.want)
		}
		hit = append(hit, passed[len(passed)-1])
		tally.points++
		tally.names = append(tally.names, args[0]+" "+passed[len(passed)-1])
	}
	if p, code, _ := w.runTraced(t, nil, args...); code != 0 {
		t.Fatalf("kiln %v after the kills: exit %d\n%s%s", args, code, p.stdout.String(), p.stderr.String())
	}
	left := w.deploymentLeftovers(t, dep, region, 1)
	left = append(left, w.untagged(t, dep, region)...)
	if r := readRecord(t, w.dir, dep); r.State != record.StateDeployed || len(r.Verifications) == 0 || !r.Verifications[len(r.Verifications)-1].Passed {
		left = append(left, fmt.Sprintf("%s's record is %s with verifications %+v", dep, r.State, r.Verifications))
	}
	if len(left) > 0 {
		tally.leaked += len(left)
		t.Errorf("after kiln %v killed at %v and run again: %v", args, hit, left)
	}
	return hit
}

// crashEvery kills `kiln args`, a deploy of dep (its own or a
// promotion's), at every step boundary: a full run lists them; then two
// chains of kills, each from a fresh start (reset). The plan inside a
// deploy and its apply both make a change set ("change set created"
// twice): the first chain dies at the plan's, the second, by number, at
// the apply's. It fails the test unless the kills hit exactly the
// boundaries of the full run, and returns how many there were.
func (w *awsDeployWorld) crashEvery(t *testing.T, tally *crashTally, dep, region string, args []string) int {
	t.Helper()
	_, code, full := w.runTraced(t, nil, args...)
	if code != 0 {
		t.Fatalf("kiln %v: exit %d", args, code)
	}
	w.reset(t, dep, region)
	stack, worker := "stack kiln-grit-"+dep+"-app", "instance kiln-grit-"+dep+"-worker"
	created := stack + " change set created"
	applyCreated := 0
	for i, b := range full {
		if b == created && slices.Contains(full[:i], created) {
			applyCreated = i + 1
		}
	}
	hit := w.crashChain(t, tally, dep, region, args, []kill{
		at(created), at("record " + dep + " deploying"), at("progress unit app"), at("begin deploy unit app"), at(stack + " change set executed"),
	})
	w.reset(t, dep, region)
	hit = append(hit, w.crashChain(t, tally, dep, region, args, []kill{
		{strconv.Itoa(applyCreated), created}, at(stack + " up"), at(stack + " tagged"), at("end deploy unit app"),
		at("progress unit worker"), at("begin deploy unit worker"), at(worker + " slot 0 launched"), at("end deploy unit worker"),
		at("record " + dep + " units up"), at("record " + dep + " deployed"), at("progress verify " + dep), at("record " + dep + " verified"),
	})...)
	slices.Sort(hit)
	slices.Sort(full)
	if !slices.Equal(hit, full) {
		t.Errorf("the kills of kiln %v hit\n  %s\nbut it passes\n  %s", args, strings.Join(hit, "\n  "), strings.Join(full, "\n  "))
	}
	return len(full)
}

// untagged lists, from moto (CloudFormation through the stub, which
// answers as AWS does), what deployment dep has in region that lacks a tag
// everything kiln makes must carry: the stack, the stack's SSM parameter,
// bucket and log group, the worker instance and its volumes.
func (w *awsDeployWorld) untagged(t *testing.T, dep, region string) []string {
	t.Helper()
	ctx := t.Context()
	want := map[string]string{cloud.TagManaged: "true", cloud.TagProject: "grit", cloud.TagDeployment: dep, "deployment_name": dep}
	var bad []string
	check := func(what string, have map[string]string) {
		for k, v := range want {
			if have[k] != v {
				bad = append(bad, fmt.Sprintf("%s: %s=%q, want %q", what, k, have[k], v))
			}
		}
	}
	stack := "kiln-grit-" + dep + "-app"
	cfn := cloudformation.NewFromConfig(awstest.Config(w.stub.URL, region))
	st, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil || len(st.Stacks) != 1 {
		t.Fatalf("stack %s: %v", stack, err)
	}
	tags := map[string]string{}
	for _, tg := range st.Stacks[0].Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	check("stack "+stack, tags)
	res, err := cfn.ListStackResources(ctx, &cloudformation.ListStackResourcesInput{StackName: aws.String(stack)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := awstest.Config(motoServer.URL, region)
	kinds := 0
	for _, r := range res.StackResourceSummaries {
		id := aws.ToString(r.PhysicalResourceId)
		have := map[string]string{}
		switch aws.ToString(r.ResourceType) {
		case "AWS::SSM::Parameter":
			out, err := ssm.NewFromConfig(cfg).ListTagsForResource(ctx, &ssm.ListTagsForResourceInput{ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range out.TagList {
				have[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
		case "AWS::S3::Bucket":
			out, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			for _, tg := range out.TagSet {
				have[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
			}
		case "AWS::Logs::LogGroup":
			out, err := cloudwatchlogs.NewFromConfig(cfg).ListTagsLogGroup(ctx, &cloudwatchlogs.ListTagsLogGroupInput{LogGroupName: aws.String(id)})
			if err != nil {
				t.Fatal(err)
			}
			have = out.Tags
		default:
			bad = append(bad, "unexpected resource "+aws.ToString(r.ResourceType))
			continue
		}
		kinds++
		check(aws.ToString(r.ResourceType)+" "+id, have)
	}
	if kinds != 3 {
		bad = append(bad, fmt.Sprintf("stack %s has %d resources, want 3", stack, kinds))
	}
	worker := w.worker(t, region, dep)
	check("instance "+aws.ToString(worker.InstanceId), tagsOf(worker.Tags))
	vols, err := w.ec2(region).DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{aws.ToString(worker.InstanceId)}},
	}})
	if err != nil || len(vols.Volumes) == 0 {
		t.Fatalf("volumes of %s: %v %v", aws.ToString(worker.InstanceId), vols, err)
	}
	for _, v := range vols.Volumes {
		check("volume "+aws.ToString(v.VolumeId), tagsOf(v.Tags))
	}
	return bad
}

// TestAWSDeployments runs the deployment flow on moto with the kiln
// binary: a release, then its image deployed to dev as a CloudFormation
// stack (the project's template, the image id from the channel manifest as
// a parameter, outputs captured) and an instance, through the crash
// harness: killed at every step boundary (two chains of kills, each rerun
// killed further on), then run to the end and checked with direct reads.
// Then: verified through the stack's output URL; deployed again with
// nothing to change; a worker stopped behind kiln's back, seen by status
// and started by a deploy; promoted to staging, killed at every boundary
// too; a bad release caught and refused promotion; a rollback; the kill
// switch. Every resource is checked for its tags, and neither kiln's
// output nor any file it wrote holds the secret the stack is given.
func TestAWSDeployments(t *testing.T) {
	start := time.Now()
	w := &awsDeployWorld{awsWorld: newAWSWorld(t, "{public: true}"), app: &appServer{served: map[string]string{}}}
	srv := httptest.NewServer(w.app)
	t.Cleanup(srv.Close)
	t.Setenv("KILN_APP_TOKEN", appSecret)
	t.Setenv("KILN_USER", "ops@example.com")
	os.MkdirAll(filepath.Join(w.dir, "cfn"), 0o755)
	os.WriteFile(filepath.Join(w.dir, "cfn/app.yaml"), []byte(appTemplate), 0o644)
	f, err := os.OpenFile(w.cfg, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, deploymentsYAML, srv.URL)
	f.Close()
	git(t, w.dir, "init", "-q")
	if out, stderr, code := w.run(t, "release", "ci-runner"); code != 0 {
		t.Fatalf("release: exit %d\n%s%s", code, out, stderr)
	}
	m, err := manifest.Load(filepath.Join(w.dir, "manifests/latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := m.Get("ci-runner", "us-east-1")
	goodWest, _ := m.Get("ci-runner", "us-west-2")
	imgs, err := w.ec2("us-east-1").DescribeImages(t.Context(), &ec2.DescribeImagesInput{ImageIds: []string{good.ID}})
	if err != nil || len(imgs.Images) != 1 {
		t.Fatalf("the released image %s: %v", good.ID, err)
	}
	version := tagsOf(imgs.Images[0].Tags)[cloud.TagVersion]
	w.app.serve(good.ID, version)
	w.app.serve(goodWest.ID, version)
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "release")
	t.Logf("release: %s", time.Since(start).Round(time.Millisecond))

	// A plan makes and removes a change set, and changes nothing.
	out, stderr, code := w.run(t, "deploy", "dev")
	if code != 0 || !regexp.MustCompile(`app +stack +create`).MatchString(out) || !regexp.MustCompile(`worker +instance +create`).MatchString(out) ||
		!strings.Contains(stderr, "nothing was changed; rerun with --apply") {
		t.Fatalf("plan: exit %d\n%s%s", code, out, stderr)
	}
	if left := w.deploymentLeftovers(t, "dev", "us-east-1", 0); len(left) > 0 {
		t.Fatalf("after a plan: %v", left)
	}

	// Deploy, killed at every boundary.
	tally := crashTally{backend: "aws (moto)", variant: "deploy and promote: kill at every boundary, chained"}
	defer tally.report(t)
	cfg := []string{"-c", w.cfg}
	crashStart := time.Now()
	n := w.crashEvery(t, &tally, "dev", "us-east-1", append([]string{"deploy", "dev", "--apply"}, cfg...))
	t.Logf("deploy: %d boundaries, killed at each, in %s", n, time.Since(crashStart).Round(time.Millisecond))

	dev := readRecord(t, w.dir, "dev")
	url := dev.Outputs["app.URL"]
	if !strings.HasPrefix(url, srv.URL+"/us-east-1/kiln-grit-dev-app") || dev.Outputs["app.Assets"] == "" || dev.Release.Images["us-east-1"] != good.ID || dev.Units["app"].Token == "" {
		t.Errorf("dev's record: outputs %v release %+v units %+v", dev.Outputs, dev.Release, dev.Units)
	}
	if dev.Release.Templates["app"] == "" || dev.Release.Secrets["api_token"] != "env:KILN_APP_TOKEN" {
		t.Errorf("dev's release: templates %v secrets %v", dev.Release.Templates, dev.Release.Secrets)
	}
	if img := w.stackImage(t, "us-east-1", "kiln-grit-dev-app"); img != good.ID {
		t.Errorf("dev's stack was given image %s, want %s (the manifest's)", img, good.ID)
	}
	if img := w.workerImage(t, "us-east-1", "dev"); img != good.ID {
		t.Errorf("dev's worker runs %s, want %s", img, good.ID)
	}
	// CloudFormation got the secret (so the checks below are not vacuous).
	gotSecret := false
	for _, c := range w.stub.Requests("cloudformation", "CreateChangeSet") {
		for k, v := range c.Form {
			gotSecret = gotSecret || strings.HasSuffix(k, "ParameterValue") && slices.Contains(v, appSecret)
		}
	}
	if !gotSecret {
		t.Error("no change set was given the secret")
	}
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "dev")
	if out, stderr, code := w.run(t, "verify", "dev"); code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}

	// Deployed again with nothing changed: no change set executed, no
	// instance launched or terminated, verified once more.
	calls := func() int {
		return len(w.stub.Requests("cloudformation", "ExecuteChangeSet")) + len(w.stub.Requests("ec2", "RunInstances")) + len(w.stub.Requests("ec2", "TerminateInstances"))
	}
	before, worker := calls(), aws.ToString(w.worker(t, "us-east-1", "dev").InstanceId)
	out, stderr, code = w.run(t, "deploy", "dev", "--apply")
	if code != 0 || !regexp.MustCompile(`app +stack +none`).MatchString(out) || !regexp.MustCompile(`worker +instance +none`).MatchString(out) {
		t.Errorf("a second deploy: exit %d\n%s%s", code, out, stderr)
	}
	if calls() != before || aws.ToString(w.worker(t, "us-east-1", "dev").InstanceId) != worker {
		t.Errorf("a deploy with nothing to change changed the cloud: %d calls that change it", calls()-before)
	}
	if r := readRecord(t, w.dir, "dev"); len(r.Verifications) <= len(dev.Verifications) || r.Release.ID != dev.Release.ID {
		t.Errorf("after a second deploy: verifications %d (were %d), release %s", len(r.Verifications), len(dev.Verifications), r.Release.ID)
	}
	if left := w.deploymentLeftovers(t, "dev", "us-east-1", 1); len(left) > 0 {
		t.Errorf("after a second deploy: %v", left)
	}
	// A worker stopped behind kiln's back: status shows the drift (exit 1)
	// and a deploy starts it again.
	if _, err := w.ec2("us-east-1").StopInstances(t.Context(), &ec2.StopInstancesInput{InstanceIds: []string{aws.ToString(w.worker(t, "us-east-1", "dev").InstanceId)}}); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := w.run(t, "status", "dev"); code != 1 || !strings.Contains(out, "unit worker is stopped, want running") {
		t.Errorf("status of dev with its worker stopped: exit %d\n%s%s", code, out, stderr)
	}
	if out, stderr, code := w.run(t, "deploy", "dev", "--apply"); code != 0 || !regexp.MustCompile(`worker +instance +start`).MatchString(out) || !regexp.MustCompile(`app +stack +none`).MatchString(out) {
		t.Errorf("deploy of dev with its worker stopped: exit %d\n%s%s", code, out, stderr)
	}
	if st := w.workerState(t, "us-east-1", "dev"); st != ec2types.InstanceStateNameRunning {
		t.Errorf("dev's worker is %s after a deploy", st)
	}

	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "dev again")

	// Promote: the same images, staging's own stack in us-west-2; killed
	// at every boundary too.
	crashStart = time.Now()
	n = w.crashEvery(t, &tally, "staging", "us-west-2", append([]string{"promote", "--from", "dev", "--to", "staging", "--apply"}, cfg...))
	t.Logf("promote: %d boundaries, killed at each, in %s", n, time.Since(crashStart).Round(time.Millisecond))
	staging := readRecord(t, w.dir, "staging")
	if staging.Release.ID != dev.Release.ID || staging.Release.PromotedFrom != "dev" || !strings.Contains(staging.Outputs["app.URL"], "/us-west-2/kiln-grit-staging-app") {
		t.Errorf("staging's record: release %+v outputs %v", staging.Release, staging.Outputs)
	}
	if img := w.stackImage(t, "us-west-2", "kiln-grit-staging-app"); img != goodWest.ID {
		t.Errorf("staging's stack was given image %s, want %s", img, goodWest.ID)
	}
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "staging")
	git(t, w.dir, "tag", "good")

	// A bad release: an image whose app answers another version than its
	// release says. Verification catches it; promotion refuses it.
	bad := seedBaseImage(t, w.ec2("us-east-1"))
	w.ec2("us-east-1").CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{bad}, Tags: []ec2types.Tag{
		{Key: aws.String(cloud.TagManaged), Value: aws.String("true")}, {Key: aws.String(cloud.TagVersion), Value: aws.String("bad")},
	}})
	w.app.serve(bad, version) // the same app inside, published as "bad"
	badEntry := good
	badEntry.ID = bad
	m.Set("ci-runner", "us-east-1", badEntry)
	if err := manifest.Write(filepath.Join(w.dir, "manifests/latest.json"), m); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = w.run(t, "deploy", "dev", "--apply")
	if code != 1 || !strings.Contains(out, `version is "`+version+`", want "bad"`) {
		t.Errorf("deploy of the bad release: exit %d\n%s%s", code, out, stderr)
	}
	out, _, code = w.run(t, "promote", "--from", "dev", "--to", "staging", "--apply")
	if code != 1 || !regexp.MustCompile(`verified +FAIL`).MatchString(out) {
		t.Errorf("promotion of the bad release: exit %d\n%s", code, out)
	}
	if readRecord(t, w.dir, "staging").Release.ID != dev.Release.ID {
		t.Error("a refused promotion changed staging")
	}
	if w.stackImage(t, "us-east-1", "kiln-grit-dev-app") != bad || w.workerImage(t, "us-east-1", "dev") != bad {
		t.Error("the bad release did not reach dev's stack and worker")
	}

	// Roll dev back to the good release: its stack and instance run the
	// good image again, verified, and dev is held.
	if out, stderr, code := w.run(t, "rollback", "dev", "--ref", "good", "--apply"); code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", code, out, stderr)
	}
	dev = readRecord(t, w.dir, "dev")
	if dev.Release.Images["us-east-1"] != good.ID || dev.Hold == nil || w.stackImage(t, "us-east-1", "kiln-grit-dev-app") != good.ID {
		t.Errorf("after the rollback: release %+v hold %+v", dev.Release, dev.Hold)
	}
	if left := append(w.deploymentLeftovers(t, "dev", "us-east-1", 1), w.untagged(t, "dev", "us-east-1")...); len(left) > 0 {
		t.Errorf("after the rollback: %v", left)
	}
	if img := w.workerImage(t, "us-east-1", "dev"); img != good.ID {
		t.Errorf("dev's worker runs %s after the rollback, want %s", img, good.ID)
	}
	if out, stderr, code := w.run(t, "status"); code != 0 {
		t.Errorf("status: exit %d\n%s%s", code, out, stderr)
	}

	// The kill switch stops the worker and starts it again.
	if out, stderr, code := w.run(t, "disable", "dev"); code != 0 {
		t.Fatalf("disable: exit %d\n%s%s", code, out, stderr)
	}
	if st := w.workerState(t, "us-east-1", "dev"); st != ec2types.InstanceStateNameStopped {
		t.Errorf("dev's worker is %s after disable", st)
	}
	if out, stderr, code := w.run(t, "enable", "dev"); code != 0 {
		t.Fatalf("enable: exit %d\n%s%s", code, out, stderr)
	}
	if st := w.workerState(t, "us-east-1", "dev"); st != ec2types.InstanceStateNameRunning {
		t.Errorf("dev's worker is %s after enable", st)
	}

	// The secret went to CloudFormation and nowhere kiln writes or shows:
	// not the output of any run, not a file in the project (records,
	// journal, state), not a stack's tags, outputs or parameters as
	// described.
	w.run(t, "status", "-o", "json")
	w.run(t, "deployments", "-o", "json")
	if strings.Contains(w.said.String(), appSecret) {
		t.Error("kiln's output shows the secret")
	}
	filepath.WalkDir(w.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if data, _ := os.ReadFile(path); bytes.Contains(data, []byte(appSecret)) {
				t.Errorf("%s holds the secret", path)
			}
		}
		return nil
	})
	for _, region := range []string{"us-east-1", "us-west-2"} {
		st, err := cloudformation.NewFromConfig(awstest.Config(w.stub.URL, region)).DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{})
		if err != nil {
			t.Fatal(err)
		}
		if data, _ := json.Marshal(st.Stacks); bytes.Contains(data, []byte(appSecret)) {
			t.Errorf("a stack in %s shows the secret", region)
		}
	}
	t.Logf("total: %s", time.Since(start).Round(time.Millisecond))
}

// stackImage reads the image a stack's parameter names, from moto.
func (w *awsDeployWorld) stackImage(t *testing.T, region, stack string) string {
	t.Helper()
	p, err := ssm.NewFromConfig(awstest.Config(motoServer.URL, region)).GetParameter(t.Context(), &ssm.GetParameterInput{Name: aws.String("/" + stack + "/image")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(p.Parameter.Value)
}

func (w *awsDeployWorld) worker(t *testing.T, region, dep string) ec2types.Instance {
	t.Helper()
	out, err := w.ec2(region).DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + cloud.TagDeployment), Values: []string{dep}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	if err != nil || len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("%s's worker: %v %v", dep, out, err)
	}
	return out.Reservations[0].Instances[0]
}

func (w *awsDeployWorld) workerImage(t *testing.T, region, dep string) string {
	return aws.ToString(w.worker(t, region, dep).ImageId)
}

func (w *awsDeployWorld) workerState(t *testing.T, region, dep string) ec2types.InstanceStateName {
	return w.worker(t, region, dep).State.Name
}

// TestAWSDeployRefusesShownSecret: a stack unit that would pass a secret
// to a parameter CloudFormation shows (not NoEcho) is bad input: the plan
// and the apply exit 2 naming the template and the parameter, never the
// value, and nothing is made.
func TestAWSDeployRefusesShownSecret(t *testing.T) {
	w := &awsDeployWorld{awsWorld: newAWSWorld(t, "{public: true}")}
	img := seedBaseImage(t, w.ec2("us-east-1"))
	w.ec2("us-east-1").CreateTags(t.Context(), &ec2.CreateTagsInput{Resources: []string{img}, Tags: []ec2types.Tag{
		{Key: aws.String(cloud.TagManaged), Value: aws.String("true")}, {Key: aws.String(cloud.TagVersion), Value: aws.String("1.0")},
	}})
	t.Setenv("KILN_APP_TOKEN", appSecret)
	os.MkdirAll(filepath.Join(w.dir, "cfn"), 0o755)
	os.WriteFile(filepath.Join(w.dir, "cfn/app.yaml"), []byte(strings.Replace(appTemplate, "ApiToken: {Type: String, NoEcho: true}", "ApiToken: {Type: String}", 1)), 0o644)
	f, err := os.OpenFile(w.cfg, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, `deployments:
  dev:
    region: us-east-1
    image: {use_case: ci-runner, id: %s}
    units:
      app:
        stack:
          template: cfn/app.yaml
          parameters: {ImageId: "{image_id}", Endpoint: "http://127.0.0.1:1", ApiToken: "{inputs.api_token}"}
    inputs:
      api_token: {secret: {env: KILN_APP_TOKEN}}
`, img)
	f.Close()
	for _, args := range [][]string{{"deploy", "dev"}, {"deploy", "dev", "--apply"}} {
		out, stderr, code := w.run(t, args...)
		if code != 2 || !strings.Contains(stderr, "cfn/app.yaml") || !strings.Contains(stderr, "stack.parameters.ApiToken gets a secret") {
			t.Errorf("kiln %v: exit %d\n%s%s", args, code, out, stderr)
		}
	}
	if strings.Contains(w.said.String(), appSecret) {
		t.Error("kiln's output shows the secret")
	}
	if n := len(w.stub.Requests("cloudformation", "CreateChangeSet")); n > 0 {
		t.Errorf("%d change sets made for a refused unit", n)
	}
	if left := w.deploymentLeftovers(t, "dev", "us-east-1", 0); len(left) > 0 {
		t.Errorf("a refused deploy left %v", left)
	}
	if _, err := os.Stat(record.Path(w.dir, "dev")); err == nil {
		t.Error("a refused deploy wrote a record")
	}
}
