package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/report"
)

// The project is found as git finds its repository: -c (file or
// directory), else KILN_CONFIG, else the working directory or a parent;
// nowhere, the error names -c and kiln init.
func TestProjectDiscovery(t *testing.T) {
	dir := initProject(t)
	sub := filepath.Join(dir, "scripts", "deeper")
	os.MkdirAll(sub, 0o755)
	elsewhere := t.TempDir()
	t.Setenv("KILN_CONFIG", "")

	validates := func(what string, args ...string) {
		t.Helper()
		out, stderr, code := kiln(t, append([]string{"validate", "-o", "json"}, args...)...)
		var rep report.Validate
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Config != filepath.Join(dir, "kiln.yaml") {
			t.Errorf("%s: exit %d, config %q\n%s%s", what, code, rep.Config, out, stderr)
		}
	}
	t.Chdir(sub)
	validates("from a subdirectory")
	t.Chdir(elsewhere)
	validates("-c DIR", "-c", dir)
	validates("-c FILE", "-c", filepath.Join(dir, "kiln.yaml"))
	t.Setenv("KILN_CONFIG", dir)
	validates("KILN_CONFIG=DIR")
	t.Setenv("KILN_CONFIG", "")

	_, stderr, code := kiln(t, "validate")
	for _, want := range []string{"no kiln.yaml in " + elsewhere + " or any parent directory", "-c DIR", "KILN_CONFIG", "kiln init"} {
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("no project: exit %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
}

// Every git failure is told in kiln's words with what to do.
func TestGitErrorsExplained(t *testing.T) {
	w := newLocalWorld(t, 50)
	// Not a git repository.
	_, stderr, code := w.kiln(t, "rollback", "--channel", "latest", "--ref", "v1")
	if code != 2 || !strings.Contains(stderr, "is not in a git repository") || !strings.Contains(stderr, "git init") || strings.Contains(stderr, "fatal:") {
		t.Errorf("rollback outside git: exit %d: %s", code, stderr)
	}
	_, stderr, code = w.kiln(t, "manifest", "diff", "v1:latest", "latest")
	if code != 2 || !strings.Contains(stderr, "is not in a git repository") || strings.Contains(stderr, "fatal:") {
		t.Errorf("diff outside git: exit %d: %s", code, stderr)
	}
	// A repository without the ref.
	w.release(t, "sandbox", "", "latest", time.Now())
	git(t, w.dir, "init", "-q")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "one")
	_, stderr, code = w.kiln(t, "rollback", "--channel", "latest", "--ref", "v9")
	if code != 2 || !strings.Contains(stderr, "--ref v9: the git repository at "+w.dir+" has no tag, branch or commit of that name") || strings.Contains(stderr, "fatal:") {
		t.Errorf("rollback --ref v9: exit %d: %s", code, stderr)
	}
	_, stderr, code = w.kiln(t, "manifest", "diff", "HEAD:nope.json", "latest")
	if code != 2 || !strings.Contains(stderr, "HEAD has no file nope.json") {
		t.Errorf("diff HEAD:nope.json: exit %d: %s", code, stderr)
	}
	// The release tags of a young project do not exist yet: drift with
	// --git-refs is quiet, as the README's nightly job expects.
	if out, stderr, code := w.kiln(t, "drift", "--git-refs", "v*"); code != 0 {
		t.Errorf("drift --git-refs 'v*' with no tags: exit %d\n%s%s", code, out, stderr)
	}
	// The deprecated --to still works, with a note.
	git(t, w.dir, "tag", "v1")
	_, stderr, code = w.kiln(t, "rollback", "--channel", "latest", "--to", "v1")
	if code != 0 || !strings.Contains(stderr, "--to is deprecated") || !strings.Contains(stderr, "--ref v1") {
		t.Errorf("rollback --to v1: exit %d: %s", code, stderr)
	}
}

// kiln init says why git matters, and starts a repository with --git.
func TestInitGit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	out, _, code := kiln(t, "init", dir)
	if code != 0 || !strings.Contains(out, "is not in a git repository") || !strings.Contains(out, "git init "+dir) {
		t.Errorf("init outside git: exit %d\n%s", code, out)
	}
	dir = filepath.Join(t.TempDir(), "q")
	out, _, code = kiln(t, "init", dir, "--git", "-o", "json")
	var rep report.Init
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.Git {
		t.Fatalf("init --git: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err != nil {
		t.Errorf("init --git made no repository: %v", err)
	}
}

// Flags have one meaning; renamed ones say their new name; --version works.
func TestFlagsAndMessages(t *testing.T) {
	dir := initProject(t)
	cfg := filepath.Join(dir, "kiln.yaml")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--version"}, 0, "kiln " + version},
		{[]string{"release", "--resume", "bogus"}, 2, "--resume: "},
		{[]string{"release", "--resume", "bogus", "-c", cfg}, 2, "--resume: "},
		{[]string{"test", "--run", "kiln-20261121T093012Z-7f3a9c", "--force", "-c", cfg}, 2, "--force is now --force-boot"},
		{[]string{"cleanup", "--orphans", "--force", "-c", cfg}, 2, "--force is now --force-recent"},
		{[]string{"schedule", "--run", "-c", cfg}, 2, "--run is now --daemon"},
		// cobra's messages replaced by kiln's, naming the command and its usage.
		{[]string{"build", "-c", cfg}, 2, "kiln build: missing USE_CASE\nusage: kiln build USE_CASE"},
		{[]string{"manifest", "diff", "a"}, 2, "kiln manifest diff: missing B"},
		{[]string{"validate", "extra"}, 2, `kiln validate: takes no arguments, got "extra"`},
		{[]string{"cleanup", "-c", cfg}, 2, "kiln cleanup: give one of --run or --orphans"},
		{[]string{"cleanup", "--run", "x", "--orphans", "-c", cfg}, 2, "--run and --orphans cannot be given together"},
		{[]string{"rollback", "--ref", "v1", "-c", cfg}, 2, "kiln rollback: missing --channel"},
		{[]string{"drift", "--warn-before", "14", "-c", cfg}, 2, `kiln drift: --warn-before "14": duration "14" has no unit`},
		{[]string{"prune", "--keep", "x", "-c", cfg}, 2, `kiln prune: --keep "x": not a number`},
		{[]string{"valdate"}, 2, `unknown command "valdate"; did you mean validate?`},
		{[]string{"manifest", "shwo"}, 2, `kiln manifest: unknown command "shwo"; did you mean show?`},
	} {
		out, stderr, code := kiln(t, c.args...)
		if code != c.code || !strings.Contains(out+stderr, c.want) {
			t.Errorf("kiln %s: exit %d, want %d and %q\n%s%s", strings.Join(c.args, " "), code, c.code, c.want, out, stderr)
		}
		if strings.Contains(stderr, "arg(s)") || strings.Contains(stderr, "flags in the group") || strings.Contains(stderr, "kiln: kiln") ||
			strings.Contains(stderr, "strconv") || strings.Contains(stderr, `for "kiln"`) {
			t.Errorf("kiln %s: cobra's wording: %s", strings.Join(c.args, " "), stderr)
		}
	}
	// --resume names the flag, not --run.
	_, stderr, _ := kiln(t, "release", "--resume", "bogus", "-c", cfg)
	if strings.Contains(stderr, "--run") {
		t.Errorf("release --resume bogus blames --run: %s", stderr)
	}
}

// Every command's help has examples; durations print as they are typed.
func TestHelp(t *testing.T) {
	g := &globalOptions{streams: &streams{}}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no examples in its help", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand(g))

	out, _, code := kiln(t, "drift", "--help")
	if code != 0 || !strings.Contains(out, `(default 14d)`) || strings.Contains(out, "336h0m0s") {
		t.Errorf("drift --help: the default of --warn-before is not 14d:\n%s", out)
	}
}

// Completion offers the project's use cases, channels, regions and runs.
func TestDynamicCompletion(t *testing.T) {
	w := newLocalWorld(t, 50)
	rel := w.release(t, "sandbox", "", "latest", time.Now())
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"release", ""}, []string{"runner", "sandbox"}},
		{[]string{"build", "runner", "--arch", ""}, []string{"x86_64", "arm64"}},
		{[]string{"promote", "sandbox", "--to", ""}, []string{"latest", "stable"}},
		{[]string{"assets", "--region", "local-"}, []string{"local-a", "local-b", "local-c"}},
		{[]string{"runs", "--run", ""}, []string{rel.run + "\tsandbox x86_64 succeeded (publish)"}},
		{[]string{"release", "--resume", "kiln-"}, []string{rel.run}},
		{[]string{"manifest", "diff", "la"}, []string{"latest"}},
	} {
		out, stderr, code := kiln(t, append([]string{"__complete", "-c", w.cfg}, c.args...)...)
		if code != 0 {
			t.Errorf("complete %v: exit %d: %s", c.args, code, stderr)
		}
		for _, want := range c.want {
			if !strings.Contains(out, want) {
				t.Errorf("complete %v: no %q in\n%s", c.args, want, out)
			}
		}
	}
}

// An empty result says so instead of printing a bare header.
func TestEmptyResults(t *testing.T) {
	w := newLocalWorld(t, 50)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"runs"}, "no runs in this machine's journal"},
		{[]string{"assets"}, "no kiln-managed resources in local-a, local-b, local-c"},
		{[]string{"manifest", "show"}, "no entries: nothing published to channels latest, stable yet"},
		{[]string{"manifest", "validate"}, "no channel manifest written yet"},
		{[]string{"manifest", "diff", "latest", "stable"}, "no differences"},
		{[]string{"cleanup", "--orphans"}, "nothing to clean up"},
		{[]string{"schedule"}, "has a schedule"},
	} {
		out, stderr, code := w.kiln(t, c.args...)
		if code != 0 || !strings.Contains(out, c.want) {
			t.Errorf("kiln %s: exit %d, want %q\n%s%s", strings.Join(c.args, " "), code, c.want, out, stderr)
		}
	}
}
