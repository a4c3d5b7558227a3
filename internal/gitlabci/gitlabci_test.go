package gitlabci

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/kiln-images/kiln/internal/config"
)

const project = `project: fleet
regions: [a, b]
use_cases:
  sandbox: {architectures: [x86_64], tests: [t.sh]}
  runner: {architectures: [x86_64, arm64], tests: [t.sh]}
channels: {latest: {}, stable: {}, lts: {}}
`

func parse(t *testing.T, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.sh"), []byte("#!/bin/sh\n"), 0o755)
	cfg, err := config.Parse("kiln.yaml", []byte(project+extra), dir)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// job is the part of a GitLab job the tests read.
type job struct {
	Stage         string   `yaml:"stage"`
	Needs         []string `yaml:"needs"`
	ResourceGroup string   `yaml:"resource_group"`
	Rules         []struct {
		If   string `yaml:"if"`
		When string `yaml:"when"`
	} `yaml:"rules"`
	Script    []string          `yaml:"script"`
	Variables map[string]string `yaml:"variables"`
	Artifacts struct {
		Paths   []string          `yaml:"paths"`
		Reports map[string]string `yaml:"reports"`
	} `yaml:"artifacts"`
	AllowFailure struct {
		ExitCodes []int `yaml:"exit_codes"`
	} `yaml:"allow_failure"`
}

func generate(t *testing.T, cfg *config.Config, o Options) (Pipeline, []string, map[string]job) {
	t.Helper()
	p, err := Generate(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(p.YAML, &doc); err != nil {
		t.Fatalf("%v\n%s", err, p.YAML)
	}
	var stages []string
	n := doc["stages"]
	n.Decode(&stages)
	jobs := map[string]job{}
	for name, n := range doc {
		if name == "stages" || name == "default" {
			continue
		}
		var j job
		if err := n.Decode(&j); err != nil {
			t.Fatalf("job %s: %v", name, err)
		}
		jobs[name] = j
	}
	return p, stages, jobs
}

func TestChains(t *testing.T) {
	cfg := parse(t, "ci: {channels: {lts: automatic}}\n")
	p, stages, jobs := generate(t, cfg, Options{ConfigPath: "kiln.yaml"})
	if want := []string{"check", "build", "test", "replicate", "publish", "promote", "maintain"}; !slices.Equal(stages, want) {
		t.Errorf("stages %v", stages)
	}
	var names []string
	for _, j := range p.Jobs {
		names = append(names, j.Name)
		if _, ok := jobs[j.Name]; !ok {
			t.Errorf("reported job %s is not in the file", j.Name)
		}
	}
	if len(names) != len(jobs) {
		t.Errorf("reported %d jobs, the file has %d", len(names), len(jobs))
	}
	for _, chain := range []string{"runner:x86_64", "runner:arm64", "sandbox:x86_64"} {
		uc, arch, _ := strings.Cut(chain, ":")
		build, test, repl, pub := jobs["build:"+chain], jobs["test:"+chain], jobs["replicate:"+chain], jobs["publish:"+chain]
		if build.Stage != "build" || len(build.Needs) != 0 || build.Artifacts.Reports["dotenv"] != "kiln-run.env" ||
			!slices.Equal(build.Script, []string{"kiln build " + uc + " --arch " + arch + " > kiln-run-id", `echo "KILN_RUN=$(cat kiln-run-id)" > kiln-run.env`}) {
			t.Errorf("build %s: %+v", chain, build)
		}
		if !slices.Equal(test.Needs, []string{"build:" + chain}) || test.Script[0] != `kiln test --run "$KILN_RUN"` {
			t.Errorf("test %s: %+v", chain, test)
		}
		if !slices.Equal(repl.Needs, []string{"build:" + chain, "test:" + chain}) || repl.Script[0] != `kiln replicate --run "$KILN_RUN"` {
			t.Errorf("replicate %s: %+v", chain, repl)
		}
		// Every job of the chain needs build directly: dotenv variables
		// reach only the jobs that need the job that made them.
		if !slices.Contains(pub.Needs, "build:"+chain) || !slices.Contains(pub.Needs, "replicate:"+chain) || pub.ResourceGroup != "kiln-fleet-latest" ||
			pub.Script[0] != `kiln publish --run "$KILN_RUN" --channel latest --push-to "${CI_COMMIT_BRANCH:?releases run on a branch}"` {
			t.Errorf("publish %s: %+v", chain, pub)
		}
		for _, j := range []job{build, test, repl, pub} {
			if len(j.Rules) != 1 || !strings.Contains(j.Rules[0].If, `$KILN_USE_CASE == "`+uc+`"`) || !strings.Contains(j.Rules[0].If, "schedule") || j.Rules[0].When != "" {
				t.Errorf("%s rules %+v", chain, j.Rules)
			}
		}
	}
	// Promotion: one job per use case and further channel, after its
	// publish jobs, in the channel's resource group; manual unless
	// configured automatic.
	st, lts := jobs["promote:runner:stable"], jobs["promote:runner:lts"]
	if !slices.Equal(st.Needs, []string{"publish:runner:x86_64", "publish:runner:arm64"}) || st.ResourceGroup != "kiln-fleet-stable" || st.Rules[0].When != "manual" ||
		st.Variables["GIT_DEPTH"] != "0" || !slices.Equal(st.AllowFailure.ExitCodes, []int{1}) ||
		st.Script[2] != `kiln promote runner --from latest --to stable --apply --push-to "${CI_COMMIT_BRANCH:?releases run on a branch}"` {
		t.Errorf("promote stable: %+v", st)
	}
	if lts.ResourceGroup != "kiln-fleet-lts" || lts.Rules[0].When != "" {
		t.Errorf("promote lts: %+v", lts)
	}
	if _, ok := jobs["promote:runner:latest"]; ok {
		t.Error("a job promotes into the release channel")
	}
	drift, cleanup := jobs["kiln:drift"], jobs["kiln:cleanup"]
	if drift.Rules[0].If != `$CI_PIPELINE_SOURCE == "schedule" && $KILN_TASK != "release"` || drift.Script[1] != "kiln drift --all-channels --git-refs 'v*'" {
		t.Errorf("drift: %+v", drift)
	}
	if cleanup.Script[1] != "kiln cleanup --orphans --older-than 2d --git-refs 'v*' --apply" {
		t.Errorf("cleanup: %+v", cleanup)
	}
	if c := jobs["kiln:check"]; len(c.Rules) != 0 || !slices.Equal(c.Script, []string{"kiln validate", "kiln ci gitlab --check"}) {
		t.Errorf("check: %+v", c)
	}
}

// The output depends on kiln.yaml alone: the same bytes every time,
// whatever the order of its maps, and another order of the file's
// mappings gives the same pipeline.
func TestDeterministic(t *testing.T) {
	a, _, _ := generate(t, parse(t, ""), Options{ConfigPath: "kiln.yaml"})
	for range 20 {
		b, _, _ := generate(t, parse(t, ""), Options{ConfigPath: "kiln.yaml"})
		if !bytes.Equal(a.YAML, b.YAML) {
			t.Fatal("two runs differ")
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.sh"), nil, 0o755)
	reordered := `channels: {lts: {}, stable: {}, latest: {}}
use_cases:
  runner: {tests: [t.sh], architectures: [x86_64, arm64]}
  sandbox: {architectures: [x86_64], tests: [t.sh]}
regions: [a, b]
project: fleet
`
	cfg, err := config.Parse("kiln.yaml", []byte(reordered), dir)
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := generate(t, cfg, Options{ConfigPath: "kiln.yaml"})
	if !bytes.Equal(a.YAML, c.YAML) {
		t.Errorf("reordered kiln.yaml gives another pipeline:\n%s\n---\n%s", a.YAML, c.YAML)
	}
	if !bytes.HasPrefix(a.YAML, []byte(Header+"kiln.yaml; do not edit.\n")) {
		t.Errorf("header: %q", a.YAML[:80])
	}
}

func TestDocumentModesAndPaths(t *testing.T) {
	o := Options{ConfigPath: "images/kiln.yaml", ManifestPaths: map[string]string{"latest": "images/manifests/latest.json", "stable": "images/manifests/stable.json", "lts": "images/m/lts.json"}}
	_, _, jobs := generate(t, parse(t, "ci: {document: merge-request, kiln: ./bin/kiln, tags: [kiln, qemu], image: 'registry.example.com/kiln:1', git_refs: '', cleanup_older_than: 0s}\n"), o)
	if got := jobs["publish:sandbox:x86_64"].Script[0]; got != `./bin/kiln -c images/kiln.yaml publish --run "$KILN_RUN" --channel latest --merge-request` {
		t.Errorf("merge-request publish: %s", got)
	}
	if got := jobs["kiln:cleanup"].Script; !slices.Equal(got, []string{"./bin/kiln -c images/kiln.yaml cleanup --orphans --apply"}) {
		t.Errorf("cleanup without refs or age: %q", got)
	}
	p, _, jobs := generate(t, parse(t, "ci: {document: none}\n"), o)
	pub := jobs["publish:sandbox:x86_64"]
	if pub.Script[0] != `kiln -c images/kiln.yaml publish --run "$KILN_RUN" --channel latest` || !slices.Equal(pub.Artifacts.Paths, []string{"images/manifests/latest.json"}) {
		t.Errorf("none: %+v", pub)
	}
	if got := jobs["promote:runner:lts"].Artifacts.Paths; !slices.Equal(got, []string{"images/m/lts.json"}) {
		t.Errorf("none promote artifacts: %v", got)
	}
	var doc struct {
		Default struct {
			Tags  []string `yaml:"tags"`
			Image string   `yaml:"image"`
		} `yaml:"default"`
	}
	p, _, _ = generate(t, parse(t, "ci: {tags: [kiln, qemu], image: 'registry.example.com/kiln:1'}\n"), o)
	yaml.Unmarshal(p.YAML, &doc)
	if !slices.Equal(doc.Default.Tags, []string{"kiln", "qemu"}) || doc.Default.Image != "registry.example.com/kiln:1" {
		t.Errorf("default: %+v", doc.Default)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{"kiln.yaml": "kiln.yaml", "v*": "'v*'", "a b": "'a b'", "it's": `'it'\''s'`, "": "''"} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
