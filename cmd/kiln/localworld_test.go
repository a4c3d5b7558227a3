package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/pipeline"
)

// localRegions are the regions of the local test project.
var localRegions = []string{"local-a", "local-b", "local-c"}

// localYAML is the local test project. sandbox is public and deprecated
// after 30 days; runner has two architectures, two regions and is shared
// with one account, so drift also checks its launch permissions.
const localYAML = `project: demo
regions: [local-a, local-b, local-c]
build_region: local-a
cost_tag: {key: deployment_name, value: demo}
channels:
  latest: {}
  stable: {}
cleanup: {confirm_above: %d}
use_cases:
  sandbox:
    architectures: [x86_64]
    tests: [tests/boot.sh]
    publish: {public: true, deprecate_after: 30d}
  runner:
    architectures: [x86_64, arm64]
    regions: [local-a, local-b]
    tests: [tests/boot.sh]
    publish: {public: false, accounts: ["111122223333"], deprecate_after: 90d}
`

// localWorld is a kiln project on the local backend whose releases are made
// by the real pipeline around the real local store, with only the builder
// and the boot tester replaced (they take minutes and are tested in
// local/debimage and local/qemuboot). Everything after a release goes
// through the CLI; the test checks results and changes the cloud behind
// kiln's back through a second backend value on the same directories.
type localWorld struct {
	dir string
	cfg string // path of kiln.yaml
}

func newLocalWorld(t *testing.T, confirmAbove int) *localWorld {
	t.Helper()
	return newLocalWorldYAML(t, fmt.Sprintf(localYAML, confirmAbove))
}

// newLocalWorldYAML is newLocalWorld with a kiln.yaml of its own.
func newLocalWorldYAML(t *testing.T, yaml string) *localWorld {
	t.Helper()
	w := &localWorld{dir: filepath.Join(t.TempDir(), "proj")}
	for path, data := range map[string]string{
		"kiln.yaml":     yaml,
		"tests/boot.sh": "#!/bin/sh\ntrue\n",
		".gitignore":    ".kiln/\n",
	} {
		p := filepath.Join(w.dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.cfg = filepath.Join(w.dir, "kiln.yaml")
	return w
}

// kiln runs the CLI on the world's project.
func (w *localWorld) kiln(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return kiln(t, append(args, "-c", w.cfg)...)
}

func (w *localWorld) config(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// store opens the project's image store as another process would, with
// the clock at at (the creation time of what it makes).
func (w *localWorld) store(t *testing.T, at time.Time) *local.Backend {
	t.Helper()
	cfg := w.config(t)
	b, err := local.New(cfg.Backend.Local, cfg.Backend.Local.Root, cfg.Regions, local.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// released is what one release left in the cloud.
type released struct {
	run    string
	images map[string]cloud.Image // region -> the run's copy
}

// release runs every phase of a new run of useCase as if it had started at
// at, publishing to channel, with this machine's journal.
func (w *localWorld) release(t *testing.T, useCase, arch, channel string, at time.Time) released {
	t.Helper()
	rel, _ := w.releaseReport(t, useCase, arch, channel, at)
	return rel
}

// releaseReport is release, also returning the pipeline's report.
func (w *localWorld) releaseReport(t *testing.T, useCase, arch, channel string, at time.Time) (released, pipeline.ReleaseReport) {
	t.Helper()
	ctx := t.Context()
	cfg := w.config(t)
	j, err := journal.Open(journalPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	p := &pipeline.Pipeline{
		Config:      cfg,
		Backend:     &fakeBuilder{Backend: w.store(t, at)},
		Journal:     j,
		Concurrency: len(cfg.Regions),
		Now:         func() time.Time { return at },
	}
	r, err := p.NewRun(ctx, useCase, arch, "")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := p.Release(ctx, r, channel)
	if err != nil {
		t.Fatalf("release %s %s: %v", useCase, arch, err)
	}
	u, _ := cfg.UseCase(useCase)
	out := released{run: r.ID, images: map[string]cloud.Image{}}
	for _, region := range cfg.TargetRegions(u) {
		copies, err := p.Copies(ctx, r, region)
		if err != nil || len(copies) != 1 {
			t.Fatalf("release %s: %d copies in %s: %v", r.ID, len(copies), region, err)
		}
		out.images[region] = copies[0]
	}
	return out, rep
}

// importImage puts an image into region directly, as made at at, with
// exactly tags.
func (w *localWorld) importImage(t *testing.T, region, name string, tags map[string]string, at time.Time) cloud.Image {
	t.Helper()
	disk := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(disk, randomBytes(t, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := w.store(t, at).ImportImage(t.Context(), local.ImportInput{
		Region: region, Name: name, Arch: "x86_64", Tags: tags, Disk: disk,
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// exists reports whether the image is in the store, asking the store
// itself, not kiln.
func (w *localWorld) exists(t *testing.T, region, id string) bool {
	t.Helper()
	_, err := w.store(t, time.Now()).Image(t.Context(), region, id)
	if errors.Is(err, cloud.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

// releaseTags are the tags a replicate copy of run carries.
func releaseTags(run, useCase, arch string) map[string]string {
	return map[string]string{
		cloud.TagManaged: "true", cloud.TagProject: "demo", cloud.TagAssetID: run, cloud.TagUseCase: useCase, cloud.TagArch: arch,
		cloud.TagVersion: "1.0", cloud.TagPhase: cloud.PhaseReplicate, cloud.TagTest: cloud.TestPassed,
		"deployment_name": "demo",
	}
}

func withTags(base map[string]string, extra map[string]string) map[string]string {
	m := maps.Clone(base)
	maps.Copy(m, extra)
	return m
}

// git runs git in dir with a fixed identity (for its own commits only:
// kiln's see the repository's) and returns its output, trimmed.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=kiln-test", "-c", "user.email=kiln@test", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// fakeBuilder is the real local store with Build and TestImage replaced:
// Build imports a small random disk, TestImage passes.
type fakeBuilder struct {
	*local.Backend
}

func (b *fakeBuilder) Build(ctx context.Context, in cloud.BuildInput) (cloud.Image, error) {
	disk := filepath.Join(in.StateDir, "disk-"+in.Token)
	if err := os.MkdirAll(in.StateDir, 0o755); err != nil {
		return cloud.Image{}, err
	}
	data := make([]byte, 64<<10)
	rand.Read(data)
	if err := os.WriteFile(disk, data, 0o644); err != nil {
		return cloud.Image{}, err
	}
	// Exports are files of their own, as the real builder's qemu-img
	// conversions are.
	exports := map[string]string{}
	for _, format := range in.UseCase.Exports {
		path := disk + "." + format
		rand.Read(data)
		if err := os.WriteFile(path, data[:1000+len(format)], 0o644); err != nil {
			return cloud.Image{}, err
		}
		exports[format] = path
	}
	return b.ImportImage(ctx, local.ImportInput{Region: in.Region, Name: in.Name, Arch: in.Arch, Token: in.Token, Tags: in.Tags, Disk: disk, Exports: exports})
}

func (b *fakeBuilder) TestImage(ctx context.Context, in cloud.TestInput) (cloud.TestResult, error) {
	return cloud.TestResult{Passed: true}, nil
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}
