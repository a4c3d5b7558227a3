package teardown

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/journal"
)

// The core's tests run against an account in memory: stacks with
// resources (some kept by their template), buckets with objects,
// repositories with images, snapshots, volumes and log groups, each
// tagged; the real deployment core, records and journal around it.

// fres is one resource of the fake account.
type fres struct {
	typ, id string
	tags    map[string]string
	parent  string // a stack's name
	retain  bool   // the stack's template keeps it
	objects int    // a bucket's object versions, a repository's images
}

// fakeCloud is the account.
type fakeCloud struct {
	mu  sync.Mutex
	res map[string]*fres // typ|id
	// stale are what the tag index still lists after deletion.
	stale map[string]map[string]string
	// writeOnDelete adds objects to a bucket when its stack is first
	// deleted: a late writer that makes the delete fail.
	writeOnDelete map[string]string // stack -> bucket
	calls         []string
	stopped       map[string]bool
	// protected are stacks with termination protection.
	protected map[string]bool
}

func newFakeCloud() *fakeCloud {
	return &fakeCloud{res: map[string]*fres{}, stale: map[string]map[string]string{}, writeOnDelete: map[string]string{}, stopped: map[string]bool{}, protected: map[string]bool{}}
}

func (c *fakeCloud) add(r *fres) { c.res[r.typ+"|"+r.id] = r }

func (c *fakeCloud) call(format string, args ...any) {
	c.calls = append(c.calls, fmt.Sprintf(format, args...))
}

// ids returns the typ|id of what exists, sorted.
func (c *fakeCloud) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.res))
}

func (c *fakeCloud) has(k string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.res[k]
	return ok
}

// stackKind is a unit kind of stacks "stack-<deployment>-<unit>".
type stackKind struct{ c *fakeCloud }

func stackName(u deploy.Unit) string { return "stack-" + u.Deployment + "-" + u.Name }

func (k stackKind) Plan(context.Context, deploy.Unit) (deploy.UnitPlan, error) {
	return deploy.UnitPlan{}, nil
}
func (k stackKind) Apply(context.Context, deploy.Unit) (deploy.UnitStatus, error) {
	return deploy.UnitStatus{}, nil
}
func (k stackKind) Status(context.Context, deploy.Unit) (deploy.UnitStatus, error) {
	return deploy.UnitStatus{}, nil
}

func (k stackKind) SetRunning(ctx context.Context, u deploy.Unit, running bool) error {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	if _, ok := k.c.res["stack|"+stackName(u)]; !ok {
		return cloud.Mark(fmt.Errorf("no stack %s", stackName(u)), cloud.ErrNotFound)
	}
	k.c.call("stop %s", u.Name)
	k.c.stopped[u.Name] = !running
	return nil
}

func (k stackKind) Resources(ctx context.Context, region string, tags map[string]string) ([]deploy.Resource, error) {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	var out []deploy.Resource
	for _, id := range slices.Sorted(maps.Keys(k.c.res)) {
		r := k.c.res[id]
		if r.typ != "stack" || !cloud.Match(r.tags, tags) {
			continue
		}
		out = append(out, deploy.Resource{Type: "AWS::CloudFormation::Stack", ID: r.id, Region: region, Tags: maps.Clone(r.tags)})
		for _, cid := range slices.Sorted(maps.Keys(k.c.res)) {
			ch := k.c.res[cid]
			if ch.parent == r.id {
				out = append(out, deploy.Resource{Type: cfnName(ch.typ), ID: ch.id, Region: region, Tags: maps.Clone(r.tags), Parent: r.id, Retain: ch.retain})
			}
		}
	}
	return out, nil
}

// SetProtected is deploy.Protector: termination protection on or off.
func (k stackKind) SetProtected(ctx context.Context, u deploy.Unit, on bool) error {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	k.c.call("protect %s %t", stackName(u), on)
	k.c.protected[stackName(u)] = on
	return nil
}

func cfnName(t string) string {
	for k, v := range cfnTypes {
		if v == t && strings.HasPrefix(k, "AWS::") && k != "AWS::ImageBuilder::Image" {
			return k
		}
	}
	return t
}

// Destroy deletes the stack and its resources but those it retains; a
// bucket with objects fails the delete as on AWS (DELETE_FAILED), after
// the others went.
func (k stackKind) Destroy(ctx context.Context, u deploy.Unit) error {
	k.c.mu.Lock()
	defer k.c.mu.Unlock()
	name := stackName(u)
	k.c.call("destroy %s", name)
	if _, ok := k.c.res["stack|"+name]; !ok {
		return nil
	}
	if k.c.protected[name] {
		return fmt.Errorf("stack %s has termination protection: %w", name, deploy.ErrProtected)
	}
	if b, ok := k.c.writeOnDelete[name]; ok {
		delete(k.c.writeOnDelete, name)
		k.c.res["bucket|"+b].objects += 3
	}
	var failed []string
	for id, r := range k.c.res {
		if r.parent != name {
			continue
		}
		switch {
		case r.retain:
			r.parent = ""
		case r.objects > 0:
			failed = append(failed, fmt.Sprintf("%s %s: The bucket you tried to delete is not empty", r.typ, r.id))
		default:
			delete(k.c.res, id)
		}
	}
	if len(failed) > 0 {
		return cloud.Mark(fmt.Errorf("stack %s DELETE_FAILED: %s", name, strings.Join(failed, "; ")), cloud.ErrNotYet)
	}
	delete(k.c.res, "stack|"+name)
	return nil
}

// leftovers are the fake Leftovers and Index of the account.
type leftovers struct{ c *fakeCloud }

var leftoverTypes = []string{TypeBucket, TypeRepository, TypeLogGroup, TypeUserPool}

func (l leftovers) Find(ctx context.Context, region string, tags map[string]string) ([]deploy.Resource, error) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	var out []deploy.Resource
	for _, id := range slices.Sorted(maps.Keys(l.c.res)) {
		r := l.c.res[id]
		if slices.Contains(leftoverTypes, r.typ) && r.tags != nil && cloud.Match(r.tags, tags) {
			out = append(out, deploy.Resource{Type: r.typ, ID: r.id, Region: region, Tags: maps.Clone(r.tags)})
		}
	}
	return out, nil
}

func (l leftovers) Empty(ctx context.Context, r deploy.Resource) error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	l.c.call("empty %s %s", r.Type, r.ID)
	if x, ok := l.c.res[r.Type+"|"+r.ID]; ok {
		x.objects = 0
	}
	return nil
}

func (l leftovers) Delete(ctx context.Context, r deploy.Resource) error {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	l.c.call("delete %s %s", r.Type, r.ID)
	x, ok := l.c.res[r.Type+"|"+r.ID]
	switch {
	case !ok:
		return nil
	case x.objects > 0:
		return cloud.Mark(fmt.Errorf("%s %s is not empty", r.Type, r.ID), cloud.ErrNotYet)
	}
	delete(l.c.res, r.Type+"|"+r.ID)
	l.c.stale[r.Type+"|"+r.ID] = x.tags
	return nil
}

// Tagged lists everything tagged, and the stale entries of what went.
func (l leftovers) Tagged(ctx context.Context, region string, tags map[string]string) ([]Indexed, []string, error) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	var out []Indexed
	var stale []string
	for _, id := range slices.Sorted(maps.Keys(l.c.res)) {
		r := l.c.res[id]
		if r.tags != nil && cloud.Match(r.tags, tags) {
			out = append(out, Indexed{Resource: deploy.Resource{Type: r.typ, ID: r.id, Region: region, Tags: maps.Clone(r.tags)}, ARN: "arn:fake:" + id, Confirmed: r.typ != "thing"})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(l.c.stale)) {
		if cloud.Match(l.c.stale[id], tags) {
			stale = append(stale, "arn:fake:"+id)
		}
	}
	return out, stale, nil
}

// inventory is the backend's: snapshots and volumes.
type inventory struct{ c *fakeCloud }

func (i inventory) ListAssets(ctx context.Context, region string, f cloud.Filter) ([]cloud.Asset, error) {
	i.c.mu.Lock()
	defer i.c.mu.Unlock()
	var out []cloud.Asset
	for _, id := range slices.Sorted(maps.Keys(i.c.res)) {
		r := i.c.res[id]
		if (r.typ == "snapshot" || r.typ == "volume") && cloud.Match(r.tags, f.Tags) {
			out = append(out, cloud.Asset{Kind: cloud.Kind(r.typ), ID: r.id, Region: region, Tags: maps.Clone(r.tags)})
		}
	}
	return out, nil
}

func (i inventory) DeleteAsset(ctx context.Context, a cloud.Asset) error {
	i.c.mu.Lock()
	defer i.c.mu.Unlock()
	i.c.call("delete %s %s", a.Kind, a.ID)
	k := string(a.Kind) + "|" + a.ID
	if r, ok := i.c.res[k]; ok {
		i.c.stale[k] = r.tags
	}
	delete(i.c.res, k)
	return nil
}

// projectYAML has a deployment "hub" of three stacks (net <- data <- app),
// a neighbour "other" with the same kinds, and a template for personal
// deployments.
const projectYAML = `project: demo
backend: {type: aws, aws: {allowed_accounts: ["123456789012"]}}
regions: [us-east-1]
cost_tag: {key: customer, value: demo}
use_cases:
  u:
    architectures: [x86_64]
    base: {ami: ami-12345678}
    tests: [t.sh]
deployments:
  hub:
    image: {use_case: u, id: ami-12345678}
    cost_tag: acme
    units:
      net: {stack: {template: t.yaml}}
      data: {stack: {template: t.yaml}, after: [net]}
      app: {stack: {template: t.yaml}, after: [data]}
    hooks:
      pre_destroy: [{name: backup, command: [./backup.sh]}]
  other:
    image: {use_case: u, id: ami-12345678}
    units:
      net: {stack: {template: t.yaml}}
  sandbox:
    image: {use_case: u, id: ami-12345678}
    template: true
    units:
      net: {stack: {template: t.yaml}}
destroy:
  retain: [log-group]
  verify_timeout: 2s
`

// world is a project with the fake account.
type world struct {
	dir   string
	cfg   *config.Config
	cloud *fakeCloud
	d     *Destroyer
	j     *journal.Journal
}

func newWorld(t *testing.T, yaml string) *world {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"kiln.yaml": yaml, "t.yaml": "Resources: {}\n", "t.sh": "#!/bin/sh\n",
		"backup.sh": "#!/bin/sh\necho \"$KILN_DEPLOYMENT\" >> backup.log\n[ ! -e backup-fails ]\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "kiln.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(dir, ".kiln", "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	c := newFakeCloud()
	w := &world{dir: dir, cfg: cfg, cloud: c, j: j}
	w.d = w.destroyer()
	return w
}

// destroyer returns a Destroyer on the world, as a new kiln process
// would make it.
func (w *world) destroyer() *Destroyer {
	dep := &deploy.Deployer{Config: w.cfg, Journal: w.j, Who: "ops@example.com"}
	l := leftovers{w.cloud}
	return &Destroyer{
		Config: w.cfg, Deployments: dep, Kinds: map[string]deploy.UnitKind{"stack": stackKind{w.cloud}},
		Assets: inventory{w.cloud}, Leftovers: l, Index: l, Journal: w.j, Who: "ops@example.com",
		PollInterval: 50 * time.Millisecond,
	}
}

func tagsOf(dep, unit string) map[string]string {
	t := deploy.UnitTags("demo", dep, unit, "rel-1", "customer", dep)
	if dep == "hub" {
		t["customer"] = "acme"
	}
	return t
}

// seed makes what deploying hub and other made: hub's three stacks, the
// data stack with a bucket (objects), a repository (images) and a log
// group the project keeps, the app stack with a bucket its template
// retains; snapshots, a volume, a bucket and a log group tagged for hub
// outside any stack; other's stack, bucket and snapshot. Both have
// records.
func (w *world) seed(t *testing.T) {
	t.Helper()
	c := w.cloud
	for _, u := range []string{"net", "data", "app"} {
		c.add(&fres{typ: "stack", id: "stack-hub-" + u, tags: tagsOf("hub", u)})
	}
	c.add(&fres{typ: TypeBucket, id: "hub-data", parent: "stack-hub-data", objects: 1500, tags: tagsOf("hub", "data")})
	c.add(&fres{typ: TypeRepository, id: "hub/app", parent: "stack-hub-data", objects: 12})
	c.add(&fres{typ: TypeLogGroup, id: "/hub/data", parent: "stack-hub-data", retain: true})
	c.add(&fres{typ: TypeBucket, id: "hub-archive", parent: "stack-hub-app", retain: true, objects: 4})
	c.add(&fres{typ: "volume", id: "vol-1", parent: "stack-hub-app"})
	c.add(&fres{typ: "snapshot", id: "snap-1", tags: tagsOf("hub", "data")})
	c.add(&fres{typ: "snapshot", id: "snap-2", tags: tagsOf("hub", "data")})
	c.add(&fres{typ: "volume", id: "vol-2", tags: tagsOf("hub", "app")})
	c.add(&fres{typ: TypeBucket, id: "hub-logs", objects: 30, tags: tagsOf("hub", "app")})
	c.add(&fres{typ: TypeLogGroup, id: "/hub/app", tags: tagsOf("hub", "app")})
	c.add(&fres{typ: "stack", id: "stack-other-net", tags: tagsOf("other", "net")})
	c.add(&fres{typ: TypeBucket, id: "other-data", parent: "stack-other-net", objects: 7, tags: tagsOf("other", "net")})
	c.add(&fres{typ: "snapshot", id: "snap-9", tags: tagsOf("other", "net")})
	for _, dep := range []string{"hub", "other"} {
		r := record.New(dep, "demo", "us-east-1", "123456789012")
		r.State = record.StateDeployed
		r.Release = &record.Release{ID: "rel-1", UseCase: "u", Arch: "x86_64", Version: "1", Images: map[string]string{"us-east-1": "ami-12345678"},
			Templates: map[string]string{}, Parameters: map[string]string{}, Secrets: map[string]string{}}
		for _, u := range w.cfg.Deployments[dep].UnitOrder() {
			r.Units[u] = record.Unit{Kind: "stack", Token: "tok"}
		}
		if err := record.Save(w.dir, r); err != nil {
			t.Fatal(err)
		}
	}
}

// neighbourIntact fails unless everything of other is there.
func (w *world) neighbourIntact(t *testing.T) {
	t.Helper()
	for _, k := range []string{"stack|stack-other-net", "bucket|other-data", "snapshot|snap-9"} {
		if !w.cloud.has(k) {
			t.Errorf("the neighbour lost %s", k)
		}
	}
	if w.cloud.res["bucket|other-data"].objects != 7 {
		t.Error("the neighbour's bucket was emptied")
	}
}

func (w *world) record(t *testing.T, name string) *record.Record {
	t.Helper()
	r, ok, err := record.Load(w.dir, name)
	if err != nil || !ok {
		t.Fatalf("record %s: %v %v", name, ok, err)
	}
	return r
}

// actions renders a plan's items as "action type id" lines.
func actions(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, string(it.Action)+" "+it.Type+" "+it.ID)
	}
	return out
}

func retainedIDs(rs []record.Retained) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Type+" "+r.ID)
	}
	sort.Strings(out)
	return out
}
