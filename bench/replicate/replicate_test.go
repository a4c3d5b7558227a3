package replicate

import (
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
)

var (
	sizeFlag    = flag.Int64("size", 2<<30, "image size in bytes")
	regionsFlag = flag.Int("regions", 8, "destination regions")
	roundsFlag  = flag.Int("rounds", 3, "rounds, each running kiln and cp once")
	outFlag     = flag.String("out", "", "append the markdown result to this file")
	dirFlag     = flag.String("dir", "", "working directory (default: a new one under /var/tmp, on a real disk)")
)

// measured is one run of one tool.
type measured struct {
	wall    time.Duration
	written int64 // bytes the process sent to storage (rusage oublock)
}

// run runs a command and measures it. Bytes written come from the child's
// rusage (512-byte blocks counted when pages are dirtied), so the page cache
// does not hide them; a sync afterwards is not timed.
func run(b *testing.B, dir string, env []string, name string, args ...string) measured {
	b.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out.String())
	}
	m := measured{wall: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.written = ru.Oublock * 512
	}
	syscall.Sync()
	return m
}

func BenchmarkReplicate(b *testing.B) {
	dir := *dirFlag
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("/var/tmp", "kiln-bench-replicate-"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	kiln := filepath.Join(dir, "kiln")
	if out, err := exec.Command("go", "build", "-o", kiln, "../../cmd/kiln").CombinedOutput(); err != nil {
		b.Fatalf("build kiln: %v\n%s", err, out)
	}
	regions := []string{"r0"}
	for i := 1; i <= *regionsFlag; i++ {
		regions = append(regions, fmt.Sprintf("r%d", i))
	}
	proj := filepath.Join(dir, "proj")
	os.MkdirAll(filepath.Join(proj, "tests"), 0o755)
	os.WriteFile(filepath.Join(proj, "tests/t.sh"), []byte("#!/bin/sh\n"), 0o755)
	cfgText := fmt.Sprintf("project: bench\nregions: [%s]\nuse_cases:\n  big:\n    architectures: [x86_64]\n    tests: [tests/t.sh]\n",
		strings.Join(regions, ", "))
	os.WriteFile(filepath.Join(proj, "kiln.yaml"), []byte(cfgText), 0o644)
	cfg, err := config.Load(filepath.Join(proj, "kiln.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	store, err := local.New(cfg.Backend.Local, cfg.Backend.Local.Root, cfg.Regions)
	if err != nil {
		b.Fatal(err)
	}

	// The source: a tested candidate of a run, as kiln build and kiln test
	// leave it, with incompressible contents.
	disk := filepath.Join(dir, "disk.raw")
	f, err := os.Create(disk)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, *sizeFlag); err != nil {
		b.Fatal(err)
	}
	f.Close()
	cpSource := filepath.Join(dir, "cp-source.raw")
	if out, err := exec.Command("cp", disk, cpSource).CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	syscall.Sync()

	var kilnRuns, cpRuns []measured
	b.ResetTimer()
	for round := 0; round < *roundsFlag; round++ {
		run := journal.NewAssetID(time.Now())
		tags := map[string]string{
			cloud.TagManaged: "true", cloud.TagAssetID: run, cloud.TagUseCase: "big", cloud.TagArch: "x86_64",
			cloud.TagVersion: "1", cloud.TagPhase: cloud.PhaseBuild, cloud.TagTest: cloud.TestPassed,
		}
		tmp := filepath.Join(dir, "import.raw")
		exec.Command("cp", "--reflink=auto", disk, tmp).Run()
		if _, err := store.ImportImage(b.Context(), local.ImportInput{
			Region: "r0", Name: "big-" + run, Arch: "x86_64", Token: run, Tags: tags, Disk: tmp,
		}); err != nil {
			b.Fatal(err)
		}
		syscall.Sync()

		// Alternate which goes first, so neither always meets a warm cache.
		kilnFirst := round%2 == 0
		for i := 0; i < 2; i++ {
			if (i == 0) == kilnFirst {
				kilnRuns = append(kilnRuns, runReplicate(b, kiln, proj, run, regions[1:]))
			} else {
				cpRuns = append(cpRuns, runCP(b, dir, cpSource, *regionsFlag))
			}
		}
		cleanRound(b, store, regions)
	}
	b.StopTimer()
	report(b, kilnRuns, cpRuns)
}

func runReplicate(b *testing.B, kiln, proj, run string, regions []string) measured {
	b.Helper()
	args := []string{"replicate", "--run", run, "-c", filepath.Join(proj, "kiln.yaml")}
	for _, r := range regions {
		args = append(args, "--region", r)
	}
	return run_(b, proj, kiln, args...)
}

func run_(b *testing.B, dir, name string, args ...string) measured {
	return run(b, dir, nil, name, args...)
}

// runCP copies the file n times with cp, one after another, as a script
// replicating to n directories would.
func runCP(b *testing.B, dir, src string, n int) measured {
	b.Helper()
	var script strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&script, "mkdir -p cp/r%d && cp %s cp/r%d/disk.raw\n", i, src, i)
	}
	m := run(b, dir, nil, "sh", "-ec", script.String())
	os.RemoveAll(filepath.Join(dir, "cp"))
	return m
}

// cleanRound deletes every image, so the next round starts empty.
func cleanRound(b *testing.B, store *local.Backend, regions []string) {
	b.Helper()
	for _, r := range regions {
		imgs, err := store.ListImages(b.Context(), r, cloud.Filter{})
		if err != nil {
			b.Fatal(err)
		}
		for _, img := range imgs {
			if err := store.DeleteImage(b.Context(), r, img.ID); err != nil {
				b.Fatal(err)
			}
		}
	}
	syscall.Sync()
}

func median(ms []measured, f func(measured) float64) float64 {
	v := make([]float64, len(ms))
	for i, m := range ms {
		v[i] = f(m)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func report(b *testing.B, kiln, cp []measured) {
	wall := func(m measured) float64 { return m.wall.Seconds() }
	mib := func(m measured) float64 { return float64(m.written) / (1 << 20) }
	kw, cw := median(kiln, wall), median(cp, wall)
	kb, cb := median(kiln, mib), median(cp, mib)
	var s strings.Builder
	fmt.Fprintf(&s, "Replicating a %d MiB image to %d regions on one filesystem, %d rounds, medians:\n\n",
		*sizeFlag>>20, *regionsFlag, len(kiln))
	fmt.Fprintf(&s, "| tool | wall (s) | written (MiB) |\n|---|---:|---:|\n")
	fmt.Fprintf(&s, "| `kiln replicate` | %.2f | %.1f |\n", kw, kb)
	fmt.Fprintf(&s, "| `cp` × %d | %.2f | %.1f |\n", *regionsFlag, cw, cb)
	fmt.Fprintf(&s, "| ratio kiln / cp | %.3f | %.4f |\n", kw/cw, kb/cb)
	fmt.Fprintf(&s, "\nEvery run (kiln wall s / MiB; cp wall s / MiB):")
	for i := range kiln {
		fmt.Fprintf(&s, " [%.2f / %.1f; %.2f / %.1f]", kiln[i].wall.Seconds(), mib(kiln[i]), cp[i].wall.Seconds(), mib(cp[i]))
	}
	fmt.Fprintln(&s)
	fmt.Print(s.String())
	b.ReportMetric(kw, "kiln-s")
	b.ReportMetric(cw, "cp-s")
	if *outFlag != "" {
		if err := os.WriteFile(*outFlag, []byte(s.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}
