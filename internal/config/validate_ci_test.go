package config

import (
	"testing"
	"time"
)

func TestForgeAndCIValidation(t *testing.T) {
	dir := newProject(t)
	for _, tc := range []errorCase{
		{"forge ok", localBase + "forge: {type: github, project: o/r, api_url: 'https://api.github.com', target_branch: release/2026, token_env: GH_TOKEN}\n", nil},
		{"forge bad", localBase + "forge:\n  type: gitea\n  remote: -x\n  api_url: 'https://u:p@gitlab.example.com/api/v4'\n  project: a\n  target_branch: 'a..b'\n  token_env: glpat-123\n", []string{
			`kiln.yaml:8:9: forge.type: unknown forge "gitea"; allowed: gitlab, github (or leave it out to guess from the remote)`,
			`kiln.yaml:9:11: forge.remote: invalid remote name "-x"; name a git remote such as origin`,
			`kiln.yaml:10:12: forge.api_url: the URL holds credentials; give the token through forge.token_env instead`,
			`kiln.yaml:11:12: forge.project: invalid project "a"; give group/project (GitLab, groups may nest) or owner/repo (GitHub)`,
			`kiln.yaml:12:18: forge.target_branch: invalid branch name "a..b"`,
			`kiln.yaml:13:14: forge.token_env: invalid environment variable name "glpat-123"; the token itself never goes into kiln.yaml, only the name of the variable holding it, e.g. GITLAB_TOKEN`,
		}},
		{"github project depth", localBase + "forge: {type: github, project: a/b/c}\n", []string{
			`kiln.yaml:7:32: forge.project: invalid project "a/b/c"; give group/project (GitLab, groups may nest) or owner/repo (GitHub)`}},
		{"api url scheme", localBase + "forge: {api_url: 'gitlab.example.com'}\n", []string{
			`kiln.yaml:7:18: forge.api_url: "gitlab.example.com" is not an http(s) URL such as https://gitlab.example.com/api/v4`}},
		{"ci ok", localBase + "ci: {kiln: ./bin/kiln, tags: [kiln, qemu], document: merge-request, release_channel: stable, channels: {stable: automatic, latest: manual}, git_refs: 'release-*', cleanup_older_than: 7d}\n", nil},
		{"ci bad", localBase + "ci:\n  file: /etc/ci.yml\n  kiln: ''\n  tags: [a, a, ' ']\n  document: pr\n  release_channel: nightly\n  channels: {beta: automatic, stable: sometimes}\n  git_refs: --all\n", []string{
			`kiln.yaml:8:9: ci.file: path "/etc/ci.yml" must be relative to the config's directory`,
			`kiln.yaml:9:9: ci.kiln: "": give the command jobs run kiln with, on one line, e.g. kiln or ./bin/kiln`,
			`kiln.yaml:10:13: ci.tags[1]: duplicate entry "a"`,
			`kiln.yaml:10:16: ci.tags[2]: " " is not a runner tag`,
			`kiln.yaml:11:13: ci.document: unknown way "pr"; allowed: push, merge-request, none`,
			`kiln.yaml:12:20: ci.release_channel: channel "nightly" is not defined; known: latest and stable`,
			`kiln.yaml:13:14: ci.channels.beta: channel "beta" is not defined; known: latest and stable`,
			`kiln.yaml:13:39: ci.channels.stable: "sometimes": allowed: automatic, manual`,
			`kiln.yaml:14:13: ci.git_refs: "--all" is not a tag pattern such as v*`,
		}},
		{"ci file suffix", localBase + "ci: {file: ci.txt}\n", []string{
			`kiln.yaml:7:12: ci.file: path "ci.txt" must end in .yml or .yaml`}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErrors(t, tc.doc, dir, tc.want) })
	}
}

func TestCIDefaults(t *testing.T) {
	dir := newProject(t)
	c, err := Parse("kiln.yaml", []byte(localBase), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Forge.Remote != "origin" || c.CI.File != ".gitlab-ci.yml" || c.CI.Kiln != "kiln" || c.CI.Document != DocumentPush ||
		c.CI.ReleaseChannel != "latest" || c.CI.GitRefs != "v*" || c.CI.CleanupOlderThan.Std() != 48*time.Hour {
		t.Errorf("defaults: forge %+v ci %+v", c.Forge, c.CI)
	}
	if c.ChannelRun("latest") != RunAutomatic || c.ChannelRun("stable") != RunManual {
		t.Errorf("channel runs: latest %s, stable %s", c.ChannelRun("latest"), c.ChannelRun("stable"))
	}
	// Without a channel named latest, the release channel is the first.
	c, err = Parse("kiln.yaml", []byte(localBase+"channels: {nightly: {}, beta: {}}\n"), dir)
	if err != nil || c.CI.ReleaseChannel != "beta" {
		t.Errorf("release channel %q, %v", c.CI.ReleaseChannel, err)
	}
}

func TestValidBranch(t *testing.T) {
	for name, want := range map[string]bool{
		"main": true, "release/2026": true, "kiln/latest/kiln-20261121T093012Z-7f3a9c": true,
		"": false, "-x": false, "a..b": false, "a b": false, "a~1": false, "x.lock": false, "a/.b": false,
		"a//b": false, "/a": false, "a/": false, "a@{1}": false, "@": false, "a:b": false, "a\x00": false,
	} {
		if got := ValidBranch(name); got != want {
			t.Errorf("ValidBranch(%q) = %v, want %v", name, got, want)
		}
	}
}
