package assets

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// fakeCloud is an in-memory asset store whose deletes enforce dependencies
// the way EC2 does: a key pair or security group can't go while an instance
// of the same run exists, a snapshot can't go while its image exists.
type fakeCloud struct {
	mu      sync.Mutex
	assets  map[string]cloud.Asset // key -> asset
	order   []string               // deletion order, for assertions
	notYet  map[string]int         // key -> transient ErrNotYet answers left
	failing map[string]error       // key -> permanent error
	listErr map[string]error       // region -> list error
}

func newFake(as ...cloud.Asset) *fakeCloud {
	f := &fakeCloud{assets: map[string]cloud.Asset{}, notYet: map[string]int{}, failing: map[string]error{}, listErr: map[string]error{}}
	for _, a := range as {
		f.assets[key(a)] = a
	}
	return f
}

func (f *fakeCloud) ListAssets(_ context.Context, region string, flt cloud.Filter) ([]cloud.Asset, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.listErr[region]; err != nil {
		return nil, err
	}
	var out []cloud.Asset
	for _, a := range f.assets {
		if a.Region != region {
			continue
		}
		if cloud.Match(a.Tags, flt.Tags) {
			out = append(out, a)
			continue
		}
		// untagged children of matching parents
		if p, ok := f.assets[region+"/"+string(cloud.KindImage)+"/"+a.Parent]; ok && cloud.Match(p.Tags, flt.Tags) {
			out = append(out, a)
		} else if p, ok := f.assets[region+"/"+string(cloud.KindStack)+"/"+a.Parent]; ok && cloud.Match(p.Tags, flt.Tags) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (f *fakeCloud) DeleteAsset(_ context.Context, a cloud.Asset) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := key(a)
	if err := f.failing[k]; err != nil {
		return err
	}
	if n := f.notYet[k]; n > 0 {
		f.notYet[k] = n - 1
		return cloud.Mark(fmt.Errorf("%s busy", a.ID), cloud.ErrNotYet)
	}
	if _, ok := f.assets[k]; !ok {
		return nil
	}
	for _, o := range f.assets {
		if o.Region != a.Region {
			continue
		}
		blocks := (a.Kind == cloud.KindKeyPair || a.Kind == cloud.KindSecurityGroup) && o.Kind == cloud.KindInstance &&
			o.Tags[cloud.TagAssetID] == a.Tags[cloud.TagAssetID]
		blocks = blocks || (a.Kind == cloud.KindSnapshot && o.Kind == cloud.KindImage && o.ID == a.Parent)
		if blocks {
			return cloud.Mark(fmt.Errorf("%s in use by %s", a.ID, o.ID), cloud.ErrNotYet)
		}
	}
	delete(f.assets, k)
	if a.Kind == cloud.KindStack {
		for ck, c := range f.assets {
			if c.Parent == a.ID && !c.Retain {
				delete(f.assets, ck)
			}
		}
	}
	f.order = append(f.order, string(a.Kind)+":"+a.ID)
	return nil
}

func tagged(run string, extra ...string) map[string]string {
	t := map[string]string{cloud.TagManaged: "true", cloud.TagProject: "p", cloud.TagAssetID: run, cloud.TagUseCase: "ci"}
	for i := 0; i+1 < len(extra); i += 2 {
		t[extra[i]] = extra[i+1]
	}
	return t
}

const runA = "kiln-20261101T100000Z-aaaaaa"

func crashedRun() []cloud.Asset {
	old := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	return []cloud.Asset{
		{Kind: cloud.KindKeyPair, ID: "kiln-key", Region: "r1", Tags: tagged(runA), Created: old},
		{Kind: cloud.KindSecurityGroup, ID: "sg-1", Region: "r1", Tags: tagged(runA), Created: old},
		{Kind: cloud.KindInstance, ID: "i-1", Region: "r1", Tags: tagged(runA), Created: old},
		{Kind: cloud.KindImage, ID: "img-1", Region: "r1", Tags: tagged(runA), Created: old},
		{Kind: cloud.KindSnapshot, ID: "snap-1", Region: "r1", Parent: "img-1", Created: old},
		{Kind: cloud.KindImage, ID: "img-2", Region: "r2", Tags: tagged(runA), Created: old},
		{Kind: cloud.KindSnapshot, ID: "snap-2", Region: "r2", Parent: "img-2", Created: old},
	}
}

func TestApplyDeletesInDependencyOrderAndVerifies(t *testing.T) {
	f := newFake(crashedRun()...)
	flt := cloud.Filter{Tags: map[string]string{cloud.TagAssetID: runA}}
	inv := Scan(context.Background(), f, []string{"r1", "r2"}, flt, 4)
	if err := inv.Err(); err != nil || len(inv.Assets) != 7 {
		t.Fatalf("scan: %d assets, err %v", len(inv.Assets), err)
	}
	plan := MakePlan(inv.Assets, Policy{Now: time.Now(), Project: testProject})
	if plan.Deletes() != 7 {
		t.Fatalf("plan deletes %d, want 7: %+v", plan.Deletes(), plan.Items)
	}
	// One attempt only: a dependency deleted too early would fail for good.
	rep, err := Apply(context.Background(), f, plan, Options{Regions: []string{"r1", "r2"}, Filter: flt, Retries: 1})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unplanned != 0 || len(f.assets) != 0 {
		t.Fatalf("unplanned %d, left %v, results %+v", rep.Unplanned, f.assets, rep.Results)
	}
	pos := map[string]int{}
	for i, o := range f.order {
		pos[o] = i
	}
	for _, before := range [][2]string{
		{"instance:i-1", "key-pair:kiln-key"}, {"instance:i-1", "security-group:sg-1"}, {"image:img-1", "snapshot:snap-1"},
	} {
		if pos[before[0]] > pos[before[1]] {
			t.Errorf("%s deleted after %s (order %v)", before[0], before[1], f.order)
		}
	}
	for _, r := range rep.Results {
		if r.Outcome != Deleted {
			t.Errorf("%s %s: outcome %s", r.Asset.Kind, r.Asset.ID, r.Outcome)
		}
	}
}

func TestApplyRetriesNotYetAndReportsFailures(t *testing.T) {
	f := newFake(crashedRun()...)
	f.notYet["r1/security-group/sg-1"] = 2
	f.failing["r2/image/img-2"] = cloud.Mark(fmt.Errorf("img-2: UnauthorizedOperation"), cloud.ErrAccessDenied)
	flt := cloud.Filter{Tags: map[string]string{cloud.TagAssetID: runA}}
	inv := Scan(context.Background(), f, []string{"r1", "r2"}, flt, 4)
	rep, err := Apply(context.Background(), f, MakePlan(inv.Assets, Policy{Project: testProject}), Options{
		Regions: []string{"r1", "r2"}, Filter: flt, RetryBase: time.Millisecond, RetryMax: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Outcome{}
	for _, r := range rep.Results {
		got[r.Asset.ID] = r.Outcome
	}
	if got["sg-1"] != Deleted {
		t.Errorf("sg-1 (busy twice, then free): %s, want deleted", got["sg-1"])
	}
	if got["img-2"] != Failed || got["snap-2"] != Failed {
		t.Errorf("img-2 %s, snap-2 %s: want failed, failed (snapshot stays in use)", got["img-2"], got["snap-2"])
	}
	if rep.Unplanned != 2 {
		t.Errorf("unplanned %d, want 2", rep.Unplanned)
	}
	for _, r := range rep.Results {
		if r.Asset.ID == "img-2" && !strings.Contains(r.Error, "UnauthorizedOperation") {
			t.Errorf("img-2 error %q does not carry the cause", r.Error)
		}
	}
}

func TestPlanSafety(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	const runB = "kiln-20261121T115900Z-bbbbbb"
	as := append(crashedRun(),
		cloud.Asset{Kind: cloud.KindImage, ID: "img-pub", Region: "r1", Tags: tagged(runA), Created: now.Add(-48 * time.Hour)},
		cloud.Asset{Kind: cloud.KindSnapshot, ID: "snap-pub", Region: "r1", Parent: "img-pub"},
		cloud.Asset{Kind: cloud.KindImage, ID: "img-keep", Region: "r2", Tags: tagged(runA, cloud.TagRetain, "true")},
		cloud.Asset{Kind: cloud.KindStack, ID: "kiln-stack", Region: "r2", Tags: tagged(runA)},
		cloud.Asset{Kind: cloud.KindSecurityGroup, ID: "sg-stack", Region: "r2", Parent: "kiln-stack"},
		cloud.Asset{Kind: cloud.KindKeyPair, ID: "key-stack", Region: "r2", Parent: "kiln-stack", Retain: true},
		cloud.Asset{Kind: cloud.KindInstance, ID: "i-busy", Region: "r1", Tags: tagged(runB), Created: now.Add(-time.Minute)},
		cloud.Asset{Kind: cloud.KindImage, ID: "img-young", Region: "r2", Tags: tagged("kiln-20261121T110000Z-cccccc"), Created: now.Add(-time.Hour)},
	)
	plan := MakePlan(as, Policy{Project: testProject,
		Referenced: func(region, id string) string {
			if region == "r1" && id == "img-pub" {
				return "manifests/stable.json"
			}
			return ""
		},
		InProgress: func(run string, newest time.Time) (bool, string) {
			return run == runB, "a kiln process is working on it"
		},
		OlderThan: 2 * time.Hour,
		Now:       now,
	})
	want := map[string]Action{
		"img-pub": Protect, "snap-pub": Protect, "img-keep": Retain, "kiln-stack": Delete,
		"sg-stack": WithParent, "key-stack": Retain, "i-busy": Skip, "img-young": Skip,
		"i-1": Delete, "snap-1": Delete,
	}
	for _, it := range plan.Items {
		if w, ok := want[it.Asset.ID]; ok && it.Action != w {
			t.Errorf("%s: %s (%s), want %s", it.Asset.ID, it.Action, it.Reason, w)
		}
	}
	// Applying the plan deletes none of the survivors.
	f := newFake(as...)
	rep, err := Apply(context.Background(), f, plan, Options{Regions: []string{"r1", "r2"}, RetryBase: time.Millisecond, RetryMax: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for id, action := range want {
		if action == Delete || action == WithParent {
			continue
		}
		found := false
		for _, a := range f.assets {
			found = found || a.ID == id
		}
		if !found {
			t.Errorf("%s (%s) was deleted", id, action)
		}
	}
	if rep.Unplanned != 0 {
		t.Errorf("unplanned %d: %+v", rep.Unplanned, rep.Results)
	}
}

func TestScanReportsFailedRegionAndKeepsOthers(t *testing.T) {
	f := newFake(crashedRun()...)
	f.listErr["r2"] = fmt.Errorf("boom")
	inv := Scan(context.Background(), f, []string{"r1", "r2"}, cloud.Filter{}, 2)
	if inv.Err() == nil || !strings.Contains(inv.Err().Error(), "r2") {
		t.Fatalf("Err() = %v, want the r2 failure", inv.Err())
	}
	if len(inv.Assets) != 5 {
		t.Fatalf("got %d assets from r1, want 5", len(inv.Assets))
	}
	runs := ByRun(inv.Assets)
	if len(runs) != 1 || runs[0].RunID != runA || runs[0].Kinds[cloud.KindSnapshot] != 1 || runs[0].Total != 5 {
		t.Fatalf("ByRun = %+v", runs)
	}
}

func TestPrunePlanKeepsNewestReferencedAndInUse(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	img := func(id, region string, day int) cloud.Asset {
		return cloud.Asset{Kind: cloud.KindImage, ID: id, Region: region, Created: base.AddDate(0, 0, day),
			Tags: tagged(fmt.Sprintf("kiln-202611%02dT000000Z-000000", day+1), cloud.TagPhase, cloud.PhaseReplicate, cloud.TagArch, "x86_64")}
	}
	as := []cloud.Asset{
		img("img-d1", "r1", 1), img("img-d2", "r1", 2), img("img-d3", "r1", 3), img("img-d4", "r1", 4), img("img-d5", "r1", 5),
		{Kind: cloud.KindSnapshot, ID: "snap-d1", Region: "r1", Parent: "img-d1"},
		img("img-r2", "r2", 1), // alone in its group: newest
		{Kind: cloud.KindInstance, ID: "i-leftover", Region: "r1", Tags: tagged(runA)},
	}
	cand := img("img-cand", "r1", 0)
	cand.Tags[cloud.TagPhase] = cloud.PhaseBuild
	as = append(as, cand)
	plan := PrunePlan(as, Retention{Project: testProject,
		Keep: 2,
		Referenced: func(region, id string) string {
			if id == "img-d1" {
				return "v1.0.0:manifests/stable.json"
			}
			return ""
		},
		InUse: func(region, id string) string {
			if id == "img-d2" {
				return "instance i-123"
			}
			return ""
		},
		Now: base.AddDate(0, 0, 10),
	})
	got := map[string]Action{}
	for _, it := range plan.Items {
		got[it.Asset.ID] = it.Action
	}
	want := map[string]Action{
		"img-d5": Protect, "img-d4": Protect, "img-d3": Delete, "img-d2": Protect, "img-d1": Protect,
		"snap-d1": Protect, "img-r2": Protect,
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
	}
	for _, id := range []string{"i-leftover", "img-cand"} {
		if _, ok := got[id]; ok {
			t.Errorf("%s is not a released image but is in the prune plan", id)
		}
	}
}
