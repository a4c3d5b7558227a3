package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/teardown/teardowntest"
)

// destroyAWSYAML is an aws project with the deployment "hub" (two stacks,
// app after cluster) and its neighbour "other". Its stacks and everything
// around them are made directly with the SDK (teardowntest.Seed), tagged
// as kiln tags them (stacks created with termination protection), and
// destroyed through the aws unit kinds as kiln deploys' would be.
const destroyAWSYAML = `project: grit
backend:
  type: aws
  aws:
    allowed_accounts: ["%s"]
    poll_interval: 10ms
    retry_max_backoff: 50ms
regions: [us-east-1]
cost_tag: {key: deployment_name, value: grit}
use_cases:
  app:
    architectures: [x86_64]
    base: {ami: ami-0123456789abcdef0}
    tests: [tests/boot.sh]
deployments:
  hub:
    image: {use_case: app, id: ami-0123456789abcdef0}
    units:
      cluster: {stack: {template: stack.yaml}}
      app: {after: [cluster], stack: {template: stack.yaml}}
    protect: true
    hooks:
      pre_destroy: [{name: backup, command: [./backup.sh]}]
  other:
    image: {use_case: app, id: ami-0123456789abcdef0}
    units:
      cluster: {stack: {template: stack.yaml}}
destroy: {retain: [log-group, user-pool], confirm_above: 100, verify_timeout: 20s}
`

// TestDestroyAWS destroys a deployment on moto: two stacks with a
// versioned bucket (versions and delete markers), a repository with
// images and a volume each, the first also with a log group and a bucket
// its template retains; around them a bucket, a repository, snapshots, a
// volume, a role, and a log group and user pool destroy.retain keeps;
// and a neighbour deployment. The stub makes a stack whose bucket is not
// empty fail to delete as AWS does (EmulateStackFailures; moto deletes
// it and leaves the bucket), a late writer refills a bucket once at its stack's delete
// (the emptying retry), and the tag index lists a bucket deleted long
// ago (verification confirms it gone). Direct reads prove that nothing
// of hub is left but the retained set, and that the neighbour is whole.
// destroyAWSWorld is the project above on moto behind the stub, with
// hub and its neighbour seeded directly; versions and markers fill hub's
// first bucket.
type destroyAWSWorld struct {
	dir, cfg string
	stub     *awstest.Stub
	direct   *teardowntest.AWS
	seeded   teardowntest.Seeded
	before   []string
}

func newDestroyAWSWorld(t *testing.T, versions, markers int) *destroyAWSWorld {
	t.Helper()
	motoServer.Reset(t)
	w := &destroyAWSWorld{dir: filepath.Join(t.TempDir(), "proj")}
	w.stub = awstest.NewStub(t, motoServer.URL)
	awstest.Env(t, w.stub.URL)
	w.stub.EmulateStackFailures()
	t.Setenv("KILN_USER", "ops@example.com")
	for path, data := range map[string]string{
		"kiln.yaml":     fmt.Sprintf(destroyAWSYAML, awstest.Account),
		"stack.yaml":    "Resources: {}\n",
		"tests/boot.sh": "#!/bin/sh\ntrue\n",
		"backup.sh":     "#!/bin/sh\necho \"$KILN_DEPLOYMENT\" >> backup.log\n",
		".gitignore":    ".kiln/\nbackup.log\n",
	} {
		p := filepath.Join(w.dir, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	git(t, w.dir, "init", "-q")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "project")
	w.cfg = filepath.Join(w.dir, "kiln.yaml")

	ctx := t.Context()
	w.direct = teardowntest.NewAWS(motoServer.URL, "us-east-1")
	var err error
	w.seeded, err = w.direct.Seed(ctx, teardowntest.Scenario{
		Project: "grit", Deployment: "hub", Neighbour: "other", CostKey: "deployment_name",
		Units: []string{"cluster", "app"}, Versions: versions, Markers: markers, Images: 2,
		Buckets: 1, Repositories: 1, Snapshots: 2, Volumes: 1, Protected: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.before, err = w.direct.Inventory(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range slices.Concat(w.seeded.Gone, w.seeded.Kept, w.seeded.Neighbour) {
		if !slices.Contains(w.before, r) {
			t.Fatalf("the seed did not make %s: %v", r, w.before)
		}
	}
	return w
}

func (w *destroyAWSWorld) kiln(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return kiln(t, append(args, "-c", w.cfg)...)
}

// left reads the account back straight from each service and returns
// what of hub should be gone and is not, and what should be there (kept,
// the neighbour's) and is not.
func (w *destroyAWSWorld) left(t *testing.T) (left, lost []string) {
	t.Helper()
	after, err := w.direct.Inventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range w.seeded.Gone {
		if slices.Contains(after, r) {
			left = append(left, r)
		}
	}
	for _, r := range slices.Concat(w.seeded.Kept, w.seeded.Neighbour) {
		if !slices.Contains(after, r) {
			lost = append(lost, r)
		}
	}
	return left, lost
}

func TestDestroyAWS(t *testing.T) {
	w := newDestroyAWSWorld(t, 400, 100)
	ctx, dir, stub, direct, seeded, before := t.Context(), w.dir, w.stub, w.direct, w.seeded, w.before
	run := func(args ...string) (string, string, int) { return w.kiln(t, args...) }
	stub.AddStale("us-east-1", "arn:aws:s3:::hub-deleted-last-week", map[string]string{
		"kiln:managed": "true", "kiln:project": "grit", "kiln:deployment": "hub", "deployment_name": "hub"})
	// A writer that is late: once, at the delete of hub's cluster stack,
	// it puts an object into that stack's bucket after it was emptied.
	var late atomic.Int32
	stub.OnDeleteStack(func(region, stack string) {
		if strings.Contains(stack, "kiln-grit-hub-cluster") && late.Add(1) == 1 {
			if err := direct.Put(ctx, "hub-cluster-data", "late/object"); err != nil {
				t.Errorf("late writer: %v", err)
			}
		}
	})

	// hub is protected (protect: true; its stacks have termination
	// protection): refused without --force-protected, plan or not.
	if out, _, code := run("destroy", "hub"); code != 1 || !strings.Contains(out, "REFUSED: protected (protect: true in kiln.yaml); destroy it with --force-protected") {
		t.Errorf("protected: exit %d\n%s", code, out)
	}
	// The plan: exit 0, every resource in order, the retained set apart,
	// nothing changed.
	out, errOut, code := run("destroy", "hub", "--force-protected")
	if code != 0 || !strings.Contains(errOut, "nothing was changed; rerun with --apply") {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("kiln destroy hub:\n%s", out)
	for _, re := range []string{
		`first: pre-destroy hooks \[backup\]`,
		`(?s)1 +stop +stack +app .*2 +stop +stack +cluster .*` +
			`empty +bucket +hub-app-data .*empty +bucket +hub-cluster-data .*empty +repository +hub/app .*` +
			`destroy +stack +kiln-grit-hub-app .*with-unit +volume .*` +
			`destroy +stack +kiln-grit-hub-cluster .*` +
			`delete +snapshot .*delete +volume .*delete +bucket +hub-uploads-0 .*delete +repository +hub/lambda-0 .*delete +role +hub-worker`,
		`KEPT +ID +REASON`,
		`bucket +hub-cluster-archive +DeletionPolicy Retain in kiln-grit-hub-cluster`,
		`log-group +/kiln/hub/audit +destroy.retain: log-group`,
		`user-pool +\S+ +destroy.retain: user-pool`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("plan lacks %s", re)
		}
	}
	if now, err := direct.Inventory(ctx); err != nil || !slices.Equal(now, before) {
		t.Fatalf("the plan changed the account (%v):\nbefore %v\nafter  %v", err, before, now)
	}
	if n, _ := direct.BucketVersions(ctx, "hub-cluster-data"); n != 600 {
		t.Fatalf("the plan touched hub-cluster-data: %d versions", n)
	}

	// Apply.
	if _, errOut, code := run("destroy", "hub", "--force-protected", "--apply"); code != 2 || !strings.Contains(errOut, "a protected deployment") {
		t.Errorf("unconfirmed: exit %d: %s", code, errOut)
	}
	out, errOut, code = run("destroy", "hub", "--force-protected", "--apply", "--yes", "--commit", "-o", "json")
	if code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errOut)
	}
	var rep struct {
		Schema       string            `json:"schema"`
		Applied      bool              `json:"applied"`
		After        string            `json:"state_after"`
		Retained     []record.Retained `json:"retained"`
		Commit       string            `json:"commit"`
		Verification struct {
			Passed bool     `json:"passed"`
			Kept   int      `json:"kept"`
			Stale  []string `json:"stale"`
			Left   []any    `json:"left"`
		} `json:"verification"`
		Items []struct{ Action, Type, ID, Note, Outcome, Error string } `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Schema != "kiln.destroy/v1" || !rep.Applied || rep.After != "destroyed" || !rep.Verification.Passed ||
		len(rep.Verification.Left) != 0 || rep.Commit == "" || !slices.Contains(rep.Verification.Stale, "arn:aws:s3:::hub-deleted-last-week") {
		t.Fatalf("report: %s", out)
	}
	for _, it := range rep.Items {
		if it.Outcome != "done" && it.Outcome != "gone" {
			t.Errorf("%s %s %s: %s %s", it.Action, it.Type, it.ID, it.Outcome, it.Error)
		}
		if it.Action == "destroy" && !strings.Contains(it.Note, "protection against deletion lifted (--force-protected)") {
			t.Errorf("%s %s: %q", it.Action, it.ID, it.Note)
		}
	}
	if late.Load() == 0 {
		t.Error("the late writer never ran: no stack delete reached the stub")
	}

	// Direct reads, straight from each service: nothing of hub but the
	// retained set; the neighbour whole.
	if left, lost := w.left(t); len(left)+len(lost) > 0 {
		t.Errorf("left %v; lost %v", left, lost)
	}
	// The user pool is listed by name; the record names it by id.
	var keptIDs []string
	for _, k := range rep.Retained {
		keptIDs = append(keptIDs, k.Type+" "+k.ID)
	}
	for _, k := range seeded.Kept {
		if !slices.Contains(keptIDs, k) && !strings.HasPrefix(k, "user-pool ") {
			t.Errorf("%s is not in the retained set %v", k, keptIDs)
		}
	}
	if len(rep.Retained) != len(seeded.Kept) {
		t.Errorf("retained %v, seeded %v", keptIDs, seeded.Kept)
	}
	if n, _ := direct.BucketVersions(ctx, "other-cluster-data"); n != 24 {
		t.Errorf("the neighbour's bucket holds %d versions", n)
	}
	if n, _ := direct.BucketVersions(ctx, "hub-cluster-archive"); n != 7 {
		t.Errorf("the retained bucket holds %d versions", n)
	}
	r := readRecord(t, dir, "hub")
	if r.State != record.StateDestroyed || len(r.Retained) != len(seeded.Kept) {
		t.Errorf("record %s retained %+v", r.State, r.Retained)
	}
	if log := git(t, dir, "log", "-1", "--format=%s", "--name-only"); !strings.Contains(log, "hub: destroy (") || !strings.HasSuffix(log, "deployments/hub.json") {
		t.Errorf("commit: %s", log)
	}
	if log, _ := os.ReadFile(filepath.Join(dir, "backup.log")); string(log) != "hub\n" {
		t.Errorf("the hook wrote %q", log)
	}

	// Again: nothing to do, and nothing tagged for hub left but the kept.
	if out, errOut, code := run("destroy", "hub", "--apply", "--force-protected"); code != 0 || !strings.Contains(out, "nothing to destroy") {
		t.Errorf("again: exit %d\n%s%s", code, out, errOut)
	}
}

// TestDestroyAWSCrash kills `kiln destroy hub --apply`, a real process,
// with SIGKILL at boundaries along the teardown — before and after the
// hook, after a bucket is emptied, after a stack's termination protection
// is lifted, between the two stacks, before the last leftover, after the
// record says destroyed — each rerun killed again further on,
// then lets it finish: the account, read back directly, holds nothing of
// hub but the retained set, the neighbour is whole, the hook ran once.
func TestDestroyAWSCrash(t *testing.T) {
	w := newDestroyAWSWorld(t, 20, 5)
	tally := crashTally{backend: "aws (moto)", variant: "destroy: kill, then rerun (chained)"}
	args := []string{"destroy", "hub", "--apply", "--yes", "--force-protected", "-c", w.cfg}
	killChain(t, &tally, args,
		"~begin destroy hook pre_destroy[0] backup",
		"~end destroy hook pre_destroy[0] backup",
		"~end destroy empty bucket hub-cluster-data",
		"~end destroy unprotect unit app",
		"~end destroy destroy unit app",
		"~begin destroy delete role hub-worker",
		"~record hub destroyed",
	)
	left, lost := w.left(t)
	if len(left)+len(lost) > 0 {
		t.Errorf("left %v; lost %v", left, lost)
	}
	tally.leaked = len(left) + len(lost)
	if r := readRecord(t, w.dir, "hub"); r.State != record.StateDestroyed || len(r.Retained) != len(w.seeded.Kept) {
		t.Errorf("record %s retained %+v", r.State, r.Retained)
	}
	if log, _ := os.ReadFile(filepath.Join(w.dir, "backup.log")); string(log) != "hub\n" {
		t.Errorf("the hook wrote %q", log)
	}
	tally.report(t)
}
