package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// nothingMade lists every instance, image, snapshot, key pair and
// security group kiln could have made in the account, and the runs in the
// journal, for checking that a refused release made nothing.
func (w *awsWorld) nothingMade(t *testing.T) []string {
	t.Helper()
	var made []string
	for _, region := range awsRegions {
		c := w.ec2(region)
		imgs := w.allImages(t)
		for _, im := range imgs {
			if !strings.Contains(im, "tags=0") && strings.HasPrefix(im, region+" ami-") {
				made = append(made, im)
			}
		}
		kps, err := c.DescribeKeyPairs(t.Context(), &ec2.DescribeKeyPairsInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kps.KeyPairs {
			made = append(made, region+" key pair "+*k.KeyName)
		}
		ins, err := c.DescribeInstances(t.Context(), &ec2.DescribeInstancesInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ins.Reservations {
			for _, i := range r.Instances {
				if len(i.Tags) > 0 {
					made = append(made, region+" instance "+*i.InstanceId)
				}
			}
		}
	}
	for _, key := range w.staged(t) {
		made = append(made, "staged object "+key)
	}
	out, _, _ := w.kiln(t, "runs", "-o", "json")
	if strings.Contains(out, `"kiln-`) {
		made = append(made, "journal runs: "+out)
	}
	return made
}

// TestReleaseRefusedBeforeAnythingIsMadeAWS: each precondition of the
// whole run that fails is found before the first resource: exit 2, the
// cause named, nothing in the account and no run in the journal.
func TestReleaseRefusedBeforeAnythingIsMadeAWS(t *testing.T) {
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	w := newAWSWorld(t, "{public: true}")
	os.WriteFile(filepath.Join(w.dir, ".gitignore"), []byte(".kiln/\n"), 0o644)
	git(t, w.dir, "init", "-q", "-b", "main")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "project")
	manifestFile := filepath.Join(w.dir, "manifests", "latest.json")
	bigFile := filepath.Join(w.dir, "files", "big.bin")
	big := make([]byte, 48<<10)
	rand.Read(big)

	for _, c := range []struct {
		name        string
		args        []string
		setup, undo func()
		want        string
	}{
		{"corrupt manifest", nil,
			func() {
				os.MkdirAll(filepath.Dir(manifestFile), 0o755)
				os.WriteFile(manifestFile, []byte("{\"ci-runner\": {"), 0o644)
			},
			func() { os.RemoveAll(filepath.Dir(manifestFile)) }, "latest.json"},
		{"conflicted manifest", nil,
			func() {
				os.MkdirAll(filepath.Dir(manifestFile), 0o755)
				os.WriteFile(manifestFile, []byte("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> theirs\n"), 0o644)
			},
			func() { os.RemoveAll(filepath.Dir(manifestFile)) }, "latest.json"},
		{"merge in progress", []string{"--commit"},
			func() {
				os.WriteFile(filepath.Join(w.dir, ".git", "MERGE_HEAD"), []byte(git(t, w.dir, "rev-parse", "HEAD")+"\n"), 0o644)
			},
			func() { os.Remove(filepath.Join(w.dir, ".git", "MERGE_HEAD")) }, "a merge is in progress"},
		{"ignored manifest", []string{"--commit"},
			func() { os.WriteFile(filepath.Join(w.dir, ".git", "info", "exclude"), []byte("manifests/\n"), 0o644) },
			func() { os.WriteFile(filepath.Join(w.dir, ".git", "info", "exclude"), nil, 0o644) }, "is ignored by git"},
		{"rejecting hook", []string{"--commit"},
			func() { writeHook(t, w.dir, "pre-commit", "echo 'no commits today' >&2; exit 1") },
			func() { os.Remove(filepath.Join(w.dir, ".git", "hooks", "pre-commit")) }, "pre-commit hook rejects a commit: git hook: no commits today"},
		{"failing signing", []string{"--commit"},
			func() {
				git(t, w.dir, "config", "commit.gpgsign", "true")
				git(t, w.dir, "config", "gpg.program", "false")
			},
			func() {
				git(t, w.dir, "config", "--unset", "commit.gpgsign")
				git(t, w.dir, "config", "--unset", "gpg.program")
			}, "signing fails"},
		{"no upstream to push to", []string{"--commit", "--push"}, func() {}, func() {}, "has no upstream"},
		// Without a bucket the bundle travels in the user data.
		{"bundle too large for user data", nil,
			func() {
				os.MkdirAll(filepath.Dir(bigFile), 0o755)
				os.WriteFile(bigFile, big, 0o644)
				w.editConfig(t, func(s string) string {
					s = strings.Replace(s, "    bucket: "+awsBucket+"\n", "", 1)
					return strings.Replace(s, "      - shell: scripts/setup.sh\n", "      - shell: scripts/setup.sh\n      - file: {source: files/big.bin, destination: /opt/big.bin}\n", 1)
				})
			},
			func() {
				w.editConfig(t, func(s string) string {
					s = strings.Replace(s, "    test_timeout: 1m\n", "    test_timeout: 1m\n    bucket: "+awsBucket+"\n", 1)
					return strings.Replace(s, "      - file: {source: files/big.bin, destination: /opt/big.bin}\n", "", 1)
				})
			}, "EC2 allows 16384: set backend.aws.bucket"},
		{"recipe file outside the project", nil,
			func() {
				w.editConfig(t, func(s string) string {
					return strings.Replace(s, "      - shell: scripts/setup.sh\n", "      - shell: scripts/setup.sh\n      - file: {source: /etc/hostname, destination: /etc/hostname}\n", 1)
				})
			},
			func() {
				w.editConfig(t, func(s string) string {
					return strings.Replace(s, "      - file: {source: /etc/hostname, destination: /etc/hostname}\n", "", 1)
				})
			}, "leads outside the project"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			defer c.undo()
			_, stderr, code := w.kiln(t, append([]string{"release", "ci-runner"}, c.args...)...)
			if code != 2 || !strings.Contains(stderr, c.want) {
				t.Fatalf("exit %d, want 2 and %q:\n%s", code, c.want, stderr)
			}
			if made := w.nothingMade(t); len(made) > 0 {
				t.Fatalf("a refused release made %v", made)
			}
		})
	}
	// With every cause removed the same release goes through.
	if _, stderr, code := w.kiln(t, "release", "ci-runner", "--commit"); code != 0 {
		t.Fatalf("release after the fixes: exit %d\n%s", code, stderr)
	}
}

// writeHook installs an executable git hook in the repository at dir.
func writeHook(t *testing.T, dir, name, body string) {
	t.Helper()
	p := filepath.Join(dir, ".git", "hooks", name)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseRefusesArm64Local: the local builder makes x86_64 images only;
// a release for arm64 is refused before the run starts.
func TestReleaseRefusesArm64Local(t *testing.T) {
	w := newLocalWorld(t, 50)
	before := w.snapshot(t)
	_, stderr, code := w.kiln(t, "release", "runner", "--arch", "arm64")
	if code != 2 || !strings.Contains(stderr, `arch "arm64": not supported by the local builder yet`) || !strings.Contains(stderr, "nothing was made") {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !sameImages(before, w.snapshot(t)) {
		t.Error("the refused release changed the store")
	}
	if out, _, _ := w.kiln(t, "runs", "-o", "json"); strings.Contains(out, `"kiln-`) {
		t.Errorf("the refused release left a run in the journal:\n%s", out)
	}
}
