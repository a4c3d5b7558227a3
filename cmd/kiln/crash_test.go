package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/deploy/record"
)

// The crash harness runs kiln as a real process, kills it with SIGKILL at
// chosen points (KILN_FAILPOINT, see failpoint.go) and checks, with direct
// backend reads rather than kiln, that either `kiln cleanup --run ID
// --apply` leaves nothing of the run behind, or `kiln release --resume ID`
// finishes it with exactly one image per region and nothing temporary left.
// With KILN_CRASH_REPORT=FILE each test appends its tally to FILE.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// kilnBinary builds kiln once per test binary.
func kilnBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kiln-crash-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "kiln")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is one kiln process of the harness.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	code           int
}

// syncBuffer is a bytes.Buffer that a test may read while the process
// writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startKiln starts the kiln binary with args and extra environment.
func startKiln(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(kilnBinary(t), args...)}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.code = -1
		}
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	return p
}

// wait returns the exit code, or -1 when the process was killed.
func (p *proc) wait() int {
	<-p.done
	return p.code
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// runKiln runs kiln to the end (or its death) and returns its exit code.
func runKiln(t *testing.T, env []string, args ...string) (*proc, int) {
	t.Helper()
	p := startKiln(t, env, args...)
	return p, p.wait()
}

var runIDRE = regexp.MustCompile(`run (kiln-\d{8}T\d{6}Z-[0-9a-f]{6})`)

// runID is the asset id a release announced on stderr before it did
// anything.
func runID(t *testing.T, p *proc) string {
	t.Helper()
	m := runIDRE.FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no run id in kiln's output:\n%s", p.stderr.String())
	}
	return m[1]
}

// events reads a KILN_FAILPOINT_LOG trace.
func events(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// killChain runs kiln with args once per point (KILN_FAILPOINT=point),
// each run expected to die there and each carrying on from what the one
// before left, then once more to the end, which must exit 0.
func killChain(t *testing.T, tally *crashTally, args []string, points ...string) {
	t.Helper()
	for _, point := range points {
		p, code := runKiln(t, []string{"KILN_FAILPOINT=" + point}, args...)
		if code != -1 {
			t.Fatalf("kiln %s was not killed at %s (exit %d)\n%s%s", args[0], point, code, p.stdout.String(), p.stderr.String())
		}
		tally.points++
		tally.names = append(tally.names, args[0]+" "+point)
	}
	if p, code := runKiln(t, nil, args...); code != 0 {
		t.Fatalf("kiln %s after the kills: exit %d\n%s%s", args[0], code, p.stdout.String(), p.stderr.String())
	}
}

// crashTally counts what a crash test tried and found.
type crashTally struct {
	backend, variant string
	points, leaked   int
	names            []string
}

func (c *crashTally) report(t *testing.T) {
	line := fmt.Sprintf("%s\t%s\tkill points %d\tleaked %d", c.backend, c.variant, c.points, c.leaked)
	t.Log(line)
	if path := os.Getenv("KILN_CRASH_REPORT"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s\t%s\n", line, strings.Join(c.names, "; "))
			f.Close()
		}
	}
	if c.leaked > 0 {
		t.Errorf("%d resource(s) leaked", c.leaked)
	}
}

// localLeftovers lists, straight from the store's files and kiln's work
// directory, everything tagged with run that is not an image in keep.
func localLeftovers(t *testing.T, dir, run string, keep map[string]bool) []string {
	t.Helper()
	var left []string
	root := filepath.Join(dir, ".kiln", "store")
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		parts := strings.Split(rel, string(filepath.Separator))
		if len(parts) < 3 || (parts[1] != "images" && parts[1] != "assets") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		var rec struct {
			ID    string            `json:"id"`
			Tags  map[string]string `json:"tags"`
			State string            `json:"state"`
		}
		if json.Unmarshal(data, &rec) != nil || rec.Tags["kiln:asset-id"] != run {
			return nil
		}
		if parts[1] == "images" && keep[parts[0]+"/"+rec.ID] {
			return nil
		}
		left = append(left, rel+" ("+rec.State+")")
		return nil
	})
	work, _ := os.ReadDir(filepath.Join(dir, ".kiln", "work"))
	for _, w := range work {
		left = append(left, "work/"+w.Name())
	}
	return left
}

// referenced returns the images the project's latest manifest names, as
// region/id.
func referenced(t *testing.T, dir string) map[string]bool {
	t.Helper()
	keep := map[string]bool{}
	data, err := os.ReadFile(filepath.Join(dir, "manifests", "latest.json"))
	if err != nil {
		return keep
	}
	var m map[string]map[string]struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, regions := range m {
		for region, e := range regions {
			keep[region+"/"+e.ID] = true
		}
	}
	return keep
}

// qemuOf reports whether a qemu process for the project is still running.
func qemuOf(dir string) bool {
	out, _ := exec.Command("pgrep", "-f", "qemu-system.*"+regexp.QuoteMeta(dir)).Output()
	return len(bytes.TrimSpace(out)) > 0
}

// killWhenBooting kills p once the run's boot test has a qemu process.
func killWhenBooting(t *testing.T, p *proc, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for !qemuOf(dir) {
		if time.Now().After(deadline) || p.exited() {
			t.Fatalf("no boot started\n%s", p.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // well into the boot
	p.cmd.Process.Signal(syscall.SIGKILL)
}

func TestLocalCrashCleanup(t *testing.T) {
	tally := crashTally{backend: "local", variant: "kill, then cleanup --run ID --apply"}
	defer tally.report(t)
	points := []string{
		"~progress set the message", // provisioning in the chroot
		"~progress export qcow2",    // disk made, not yet imported
		"boot",                      // qemu running the boot test
		"~end replicate copy",       // one region copied
		"~end publish document",     // manifest written, candidate still there
	}
	for _, point := range points {
		t.Run(point, func(t *testing.T) {
			dir, cfg := localProject(t, "5m")
			var p *proc
			if point == "boot" {
				p = startKiln(t, nil, "release", "debian-sandbox", "-c", cfg)
				killWhenBooting(t, p, dir)
			} else {
				p = startKiln(t, []string{"KILN_FAILPOINT=" + point}, "release", "debian-sandbox", "-c", cfg)
			}
			if code := p.wait(); code != -1 {
				t.Fatalf("kiln was not killed at %s (exit %d)\n%s", point, code, p.stderr.String())
			}
			run := runID(t, p)
			tally.points++
			tally.names = append(tally.names, point)
			cp, code := runKiln(t, nil, "cleanup", "--run", run, "--apply", "-c", cfg)
			if code != 0 {
				t.Errorf("cleanup: exit %d\n%s%s", code, cp.stdout.String(), cp.stderr.String())
			}
			left := localLeftovers(t, dir, run, referenced(t, dir))
			if qemuOf(dir) {
				left = append(left, "a qemu process")
			}
			if len(left) > 0 {
				tally.leaked += len(left)
				t.Errorf("after cleanup of a kill at %s: %v", point, left)
			}
		})
	}
}

func TestLocalCrashResume(t *testing.T) {
	tally := crashTally{backend: "local", variant: "kill, then release --resume ID (chained)"}
	defer tally.report(t)
	dir, cfg := localProject(t, "5m")
	// Each resumed process is killed again further on, so one run is
	// interrupted in every phase.
	chain := []string{
		"~progress set the message",
		"~progress disk",
		"boot",
		"~end test record result",
		"~end replicate copy",
		"~end publish launch permissions",
		"~end publish document",
	}
	run := ""
	for _, point := range chain {
		args := []string{"release", "debian-sandbox", "-c", cfg}
		if run != "" {
			args = []string{"release", "--resume", run, "-c", cfg}
		}
		var p *proc
		if point == "boot" {
			p = startKiln(t, nil, args...)
			killWhenBooting(t, p, dir)
		} else {
			p = startKiln(t, []string{"KILN_FAILPOINT=" + point}, args...)
		}
		if code := p.wait(); code != -1 {
			t.Fatalf("kiln was not killed at %s (exit %d)\n%s", point, code, p.stderr.String())
		}
		if run == "" {
			run = runID(t, p)
		}
		tally.points++
		tally.names = append(tally.names, point)
	}
	p, code := runKiln(t, nil, "release", "--resume", run, "-c", cfg)
	if code != 0 {
		t.Fatalf("final resume: exit %d\n%s", code, p.stderr.String())
	}
	keep := referenced(t, dir)
	if len(keep) != 3 {
		t.Fatalf("manifest references %d images, want 3: %v", len(keep), keep)
	}
	perRegion := map[string]int{}
	for k := range keep {
		perRegion[strings.SplitN(k, "/", 2)[0]]++
	}
	left := localLeftovers(t, dir, run, keep)
	for region, n := range perRegion {
		if n != 1 {
			left = append(left, fmt.Sprintf("%s has %d images", region, n))
		}
	}
	if len(left) > 0 {
		tally.leaked += len(left)
		t.Errorf("after the resumed release: %v", left)
	}
}

// crashChain runs kiln with args, killing it at each of points in turn —
// a failpoint, or "boot": once the deployment dep's VM is booting — each
// rerun killed again further on, and then lets it finish. It checks, from
// the process table and the record, that dep ends with exactly one VM, one
// supervisor and a deployed, verified record, and counts into tally.
func crashChain(t *testing.T, tally *crashTally, dir, dep string, args []string, points []string) {
	t.Helper()
	for _, point := range points {
		var p *proc
		if point == "boot" {
			p = startKiln(t, nil, args...)
			deadline := time.Now().Add(10 * time.Minute)
			for len(qemus(dir, dep, "web")) == 0 {
				if time.Now().After(deadline) || p.exited() {
					t.Fatalf("no boot started\n%s", p.stderr.String())
				}
				time.Sleep(200 * time.Millisecond)
			}
			time.Sleep(3 * time.Second) // well into the boot
			p.cmd.Process.Signal(syscall.SIGKILL)
		} else {
			p = startKiln(t, []string{"KILN_FAILPOINT=" + point}, args...)
		}
		if code := p.wait(); code != -1 {
			t.Fatalf("kiln %v was not killed at %s (exit %d)\n%s", args, point, code, p.stderr.String())
		}
		tally.points++
		tally.names = append(tally.names, args[0]+" "+point)
	}
	if p, code := runKiln(t, nil, args...); code != 0 {
		t.Fatalf("kiln %v after the kills: exit %d\n%s%s", args, code, p.stdout.String(), p.stderr.String())
	}
	var left []string
	if n := len(qemus(dir, dep, "web")); n != 1 {
		left = append(left, fmt.Sprintf("%d VMs for %s", n, dep))
	}
	if n := len(supervisors(dir, dep, "web")); n != 1 {
		left = append(left, fmt.Sprintf("%d supervisors for %s", n, dep))
	}
	r := readRecord(t, dir, dep)
	if r.State != record.StateDeployed || len(r.Verifications) == 0 || !r.Verifications[len(r.Verifications)-1].Passed {
		left = append(left, fmt.Sprintf("%s's record is %s with verifications %+v", dep, r.State, r.Verifications))
	}
	if len(left) > 0 {
		tally.leaked += len(left)
		t.Errorf("after kiln %v: %v", args, left)
	}
}
