package ownership

import (
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
)

var demo = Project{Name: "team-a", UseCases: []string{"ci-runner"}, CostKey: "deployment_name", CostValue: "a"}

func tags(kv ...string) map[string]string {
	m := map[string]string{cloud.TagManaged: "true", cloud.TagAssetID: "kiln-20261101T000000Z-aaaaaa"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestJudge(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Project
		tags map[string]string
		want Verdict
	}{
		{"ours", demo, tags(cloud.TagProject, "team-a", cloud.TagUseCase, "ci-runner"), Ours},
		{"ours, no use case tag", demo, tags(cloud.TagProject, "team-a"), Ours},
		{"another project", demo, tags(cloud.TagProject, "team-b", cloud.TagUseCase, "ci-runner"), Other},
		{"project differs in case", demo, tags(cloud.TagProject, "Team-A", cloud.TagUseCase, "ci-runner"), Other},
		{"use case not in kiln.yaml", demo, tags(cloud.TagProject, "team-a", cloud.TagUseCase, "web"), Other},
		{"no project tag", demo, tags(cloud.TagUseCase, "ci-runner"), Untagged},
		{"empty project tag", demo, tags(cloud.TagProject, "", cloud.TagUseCase, "ci-runner"), Untagged},
		{"zero project", Project{}, tags(cloud.TagProject, "team-a"), Other},
	} {
		if got, why := c.p.Judge(c.tags); got != c.want {
			t.Errorf("%s: %v (%s), want %v", c.name, got, why, c.want)
		}
	}
}

func TestIsTrue(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "TRUE": true, " True ": true, "yes": false, "": false, "false": false} {
		if IsTrue(v) != want {
			t.Errorf("IsTrue(%q) = %v", v, !want)
		}
	}
}

func TestPlanAdoption(t *testing.T) {
	as := []cloud.Asset{
		{Kind: cloud.KindImage, ID: "legacy", Region: "r", Tags: tags(cloud.TagUseCase, "ci-runner", "deployment_name", "a")},
		{Kind: cloud.KindSnapshot, ID: "child", Region: "r", Parent: "legacy"},
		{Kind: cloud.KindImage, ID: "adopted", Region: "r", Tags: tags(cloud.TagProject, "team-a", cloud.TagUseCase, "ci-runner")},
		{Kind: cloud.KindImage, ID: "team-b", Region: "r", Tags: tags(cloud.TagProject, "team-b", cloud.TagUseCase, "ci-runner")},
		{Kind: cloud.KindImage, ID: "other-cost", Region: "r", Tags: tags(cloud.TagUseCase, "ci-runner", "deployment_name", "b")},
		{Kind: cloud.KindImage, ID: "other-uc", Region: "r", Tags: tags(cloud.TagUseCase, "web", "deployment_name", "a")},
		{Kind: cloud.KindImage, ID: "no-uc", Region: "r", Tags: tags("deployment_name", "a")},
	}
	got := map[string]string{}
	for _, it := range PlanAdoption(as, demo) {
		got[it.Asset.ID] = it.Action
	}
	want := map[string]string{"legacy": Adopt, "team-b": Leave, "other-cost": Leave, "other-uc": Leave, "no-uc": Leave}
	if len(got) != len(want) {
		t.Errorf("plan %v, want %v", got, want)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: %q, want %q", id, got[id], w)
		}
	}
}
