package assets

import (
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/ownership"
)

var testProject = ownership.Project{Name: "p", UseCases: []string{"ci"}}

// TestPlanDeletesOnlyThisProjectsAssets: in an account several projects
// share, a plan deletes only what carries this project's tag and one of
// its use cases; the rest is listed as foreign, children with it.
func TestPlanDeletesOnlyThisProjectsAssets(t *testing.T) {
	old := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	with := func(run string, kv ...string) map[string]string {
		tags := tagged(run)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "-" {
				delete(tags, kv[i])
				continue
			}
			tags[kv[i]] = kv[i+1]
		}
		return tags
	}
	as := []cloud.Asset{
		{Kind: cloud.KindImage, ID: "img-ours", Region: "r1", Created: old, Tags: with(runA)},
		{Kind: cloud.KindSnapshot, ID: "snap-ours", Region: "r1", Parent: "img-ours"},
		{Kind: cloud.KindImage, ID: "img-team-b", Region: "r1", Created: old, Tags: with(runA, cloud.TagProject, "team-b")},
		{Kind: cloud.KindSnapshot, ID: "snap-team-b", Region: "r1", Parent: "img-team-b"},
		{Kind: cloud.KindImage, ID: "img-legacy", Region: "r1", Created: old, Tags: with(runA, cloud.TagProject, "-")},
		{Kind: cloud.KindImage, ID: "img-other-uc", Region: "r1", Created: old, Tags: with(runA, cloud.TagUseCase, "web")},
		{Kind: cloud.KindImage, ID: "img-no-run", Region: "r1", Created: old, Tags: with(runA, cloud.TagAssetID, "-")},
		{Kind: cloud.KindImage, ID: "img-retained", Region: "r1", Created: old, Tags: with(runA, cloud.TagRetain, "TRUE")},
		{Kind: cloud.KindSnapshot, ID: "snap-shared", Region: "r1", Created: old, Tags: with(runA)},
	}
	inUse := func(a cloud.Asset) string {
		if a.ID == "snap-shared" {
			return "image ami-theirs"
		}
		return ""
	}
	want := map[string]Action{
		"img-ours": Delete, "snap-ours": Delete,
		"img-team-b": Foreign, "snap-team-b": Foreign, "img-legacy": Foreign, "img-other-uc": Foreign,
		"img-no-run": Protect, "img-retained": Retain, "snap-shared": Protect,
	}
	check := func(name string, plan Plan, want map[string]Action) {
		t.Helper()
		for _, it := range plan.Items {
			if it.Action != want[it.Asset.ID] {
				t.Errorf("%s: %s: %s (%s), want %s", name, it.Asset.ID, it.Action, it.Reason, want[it.Asset.ID])
			}
		}
	}
	check("default", MakePlan(as, Policy{Project: testProject, InUse: inUse}), want)

	want["img-no-run"] = Delete
	check("--force-unidentified", MakePlan(as, Policy{Project: testProject, InUse: inUse, ForceUnidentified: true}), want)

	// The zero project owns nothing.
	for _, it := range MakePlan(as, Policy{}).Items {
		if it.Action == Delete {
			t.Errorf("a plan without a project deletes %s", it.Asset.ID)
		}
	}
}

// TestPruneRanksOnlyThisProjectsImages: another project's newer images of
// a use case with the same name neither go nor push this project's newest
// out of the retention.
func TestPruneRanksOnlyThisProjectsImages(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	img := func(id, project string, day int) cloud.Asset {
		tags := tagged("kiln-20261101T000000Z-00000"+id[len(id)-1:], cloud.TagPhase, cloud.PhaseReplicate, cloud.TagArch, "x86_64")
		tags[cloud.TagProject] = project
		return cloud.Asset{Kind: cloud.KindImage, ID: id, Region: "r1", Created: base.AddDate(0, 0, day), Tags: tags}
	}
	as := []cloud.Asset{img("img-1", "p", 1), img("img-2", "p", 2), img("img-3", "team-b", 3), img("img-4", "team-b", 4)}
	plan := PrunePlan(as, Retention{Keep: 1, Project: testProject, Now: base.AddDate(0, 0, 10)})
	want := map[string]Action{"img-2": Protect, "img-1": Delete, "img-3": Foreign, "img-4": Foreign}
	for _, it := range plan.Items {
		if it.Action != want[it.Asset.ID] {
			t.Errorf("%s: %s (%s), want %s", it.Asset.ID, it.Action, it.Reason, want[it.Asset.ID])
		}
	}
}
