package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// --commit records each manifest change of release, promote and rollback
// in git, only the manifest, with a message naming what happened; a
// command that changes nothing commits nothing.
func TestAWSManifestCommits(t *testing.T) {
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	w := newAWSWorld(t, "{public: true}")
	os.WriteFile(filepath.Join(w.dir, ".gitignore"), []byte(".kiln/\n"), 0o644)
	git(t, w.dir, "init", "-q", "-b", "main")
	git(t, w.dir, "config", "user.name", "Release Bot")
	git(t, w.dir, "config", "user.email", "bot@example.com")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "project")
	// An unrelated change in the work tree stays out of kiln's commits.
	os.WriteFile(filepath.Join(w.dir, "scripts/setup.sh"), []byte("#!/bin/sh\necho changed\n"), 0o755)

	release := func() (run, commit string) {
		t.Helper()
		out, stderr, code := w.kiln(t, "release", "ci-runner", "--commit", "-o", "json")
		if code != 0 {
			t.Fatalf("release --commit: exit %d\n%s", code, stderr)
		}
		var rep struct {
			Run    struct{ ID, Version string }
			Commit string `json:"commit"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if rep.Commit == "" || rep.Commit != git(t, w.dir, "rev-parse", "HEAD") {
			t.Fatalf("release reported commit %q, HEAD is %s", rep.Commit, git(t, w.dir, "rev-parse", "HEAD"))
		}
		if subject := git(t, w.dir, "log", "-1", "--format=%s"); subject != "latest: ci-runner x86_64 "+rep.Run.Version+" (kiln run "+rep.Run.ID+")" {
			t.Errorf("subject %q", subject)
		}
		return rep.Run.ID, rep.Commit
	}
	onlyFile := func(commit, want string) {
		t.Helper()
		if files := git(t, w.dir, "show", "--name-only", "--format=", commit); files != want {
			t.Errorf("commit %s changed %q, want only %s", commit, files, want)
		}
	}

	run1, c1 := release()
	onlyFile(c1, "manifests/latest.json")
	if body := git(t, w.dir, "log", "-1", "--format=%b"); !strings.Contains(body, "us-east-1") {
		t.Errorf("message body has no diff:\n%s", body)
	}
	if st := git(t, w.dir, "status", "--porcelain"); st != "M scripts/setup.sh" {
		t.Errorf("work tree after release --commit:\n%s", st)
	}
	git(t, w.dir, "tag", "v1")
	v1 := git(t, w.dir, "show", "v1:manifests/latest.json")

	run2, c2 := release()
	if run2 == run1 || c2 == c1 {
		t.Fatalf("second release: run %s commit %s, same as the first", run2, c2)
	}

	if _, stderr, code := w.kiln(t, "promote", "ci-runner", "--apply", "--commit"); code != 0 {
		t.Fatalf("promote --commit: exit %d\n%s", code, stderr)
	}
	onlyFile("HEAD", "manifests/stable.json")
	if subject := git(t, w.dir, "log", "-1", "--format=%s"); subject != "stable: promote ci-runner from latest" {
		t.Errorf("promote subject %q", subject)
	}
	head := git(t, w.dir, "rev-parse", "HEAD")
	if _, stderr, code := w.kiln(t, "promote", "ci-runner", "--apply", "--commit"); code != 0 {
		t.Fatalf("second promote: exit %d\n%s", code, stderr)
	}
	if now := git(t, w.dir, "rev-parse", "HEAD"); now != head {
		t.Errorf("a promote that changed nothing made commit %s", now)
	}

	if _, stderr, code := w.kiln(t, "rollback", "--channel", "latest", "--ref", "v1", "--apply", "--commit"); code != 0 {
		t.Fatalf("rollback --commit: exit %d\n%s", code, stderr)
	}
	onlyFile("HEAD", "manifests/latest.json")
	if subject := git(t, w.dir, "log", "-1", "--format=%s"); subject != "latest: roll back to v1" {
		t.Errorf("rollback subject %q", subject)
	}
	if got := git(t, w.dir, "show", "HEAD:manifests/latest.json"); got != v1 {
		t.Errorf("rolled-back manifest in git:\n%s\nwant\n%s", got, v1)
	}
	if n := git(t, w.dir, "rev-list", "--count", "HEAD"); n != "5" {
		t.Errorf("%s commits, want 5 (project, 2 releases, promote, rollback)", n)
	}
}

// --commit where the manifest is not in a git work tree, or --push
// without --commit, is refused before anything is made.
func TestAWSCommitRefusedUpFront(t *testing.T) {
	w := newAWSWorld(t, "{public: true}")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"release", "ci-runner", "--commit"}, "not in a git work tree"},
		{[]string{"release", "ci-runner", "--push"}, "--push goes with --commit"},
	} {
		_, stderr, code := w.kiln(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
	out, err := w.ec2("us-east-1").DescribeImages(t.Context(), &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{{Name: aws.String("tag:" + cloud.TagManaged), Values: []string{"true"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Images) != 0 {
		t.Errorf("refused releases made %d images", len(out.Images))
	}
	if _, err := os.Stat(filepath.Join(w.dir, "manifests")); !os.IsNotExist(err) {
		t.Errorf("refused releases wrote manifests: %v", err)
	}
}
