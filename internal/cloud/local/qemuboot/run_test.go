package qemuboot_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/local/qemuboot"
)

// bootConcurrency is how many scenario boots run at once: one per core of
// the 2-core machines CI uses. More makes each boot under software
// emulation so slow that timings inside the guest go wrong.
const bootConcurrency = 2

// scenario is one boot of the fixture image and what it must show.
type scenario struct {
	name        string
	tests       []string
	timeout     time.Duration
	testTimeout time.Duration
	// stayUp: no tests; the boot is stopped (by cancelling Run) 20s after
	// the agent finished and a login prompt showed.
	stayUp   bool
	passed   bool
	reason   string // prefix of Result.Reason
	inLog    []string
	notInLog []string
}

// outcome is what a scenario's boot gave.
type outcome struct {
	res      qemuboot.Result
	err      error
	log      string
	pid      int
	sawAgent bool // stayUp: the agent finished and the login prompt showed
}

// The boot scenarios run concurrently on the fixture image, each then
// checked in its own subtest; afterwards the image must be unchanged.
func TestBoot(t *testing.T) {
	disk := needImage(t)
	before := sha256File(t, disk)

	scenarios := []scenario{{
		// Long ones first, so that they overlap the rest.
		name:     "hanging test hits the boot timeout",
		tests:    []string{"hang.sh"},
		timeout:  3 * time.Minute, // long enough for the test to start on a busy machine
		reason:   "timed out after 3m0s waiting for the test marker",
		inLog:    []string{"hang.sh: sleeping forever"},
		notInLog: []string{"KILN-TEST-RESULT"},
	}, {
		// Without tests the agent does nothing: the image boots to its
		// login prompt and stays up.
		name:     "normal boot stays up",
		stayUp:   true,
		notInLog: []string{"KILN-TEST-RESULT", "Power down", "Powering off"},
	}, {
		name:   "pass",
		tests:  []string{"ok.sh"},
		passed: true,
		inLog:  []string{"ok.sh: all good", "KILN-TEST-RESULT: PASS"},
	}, {
		name:     "failing test stops the run",
		tests:    []string{"ok.sh", "fail.sh", "never.sh"},
		reason:   "test fail.sh failed with exit status 3",
		inLog:    []string{"ok.sh: all good", "fail.sh: failing on purpose", "KILN-TEST-RESULT: FAIL fail.sh 3"},
		notInLog: []string{"never.sh ran"},
	}, {
		name:        "hanging test hits its own limit",
		tests:       []string{"hang.sh"},
		testTimeout: 5 * time.Second,
		reason:      "test hang.sh did not finish within 5s",
		inLog:       []string{"hang.sh: sleeping forever", "KILN-TEST-RESULT: FAIL hang.sh timeout"},
	}, {
		// A test that powers the machine off: qemu ends and no agent is
		// left to print a result.
		name:     "guest powers off without a marker",
		tests:    []string{"poweroff.sh"},
		reason:   "guest powered off without a result marker",
		inLog:    []string{"poweroff.sh: powering off"},
		notInLog: []string{"KILN-TEST-RESULT"},
	}, {
		name:     "kernel panic",
		tests:    []string{"panic.sh"},
		reason:   "kernel panic: Kernel panic - not syncing: sysrq triggered crash",
		inLog:    []string{"panic.sh: crashing the kernel"},
		notInLog: []string{"KILN-TEST-RESULT"},
	}}

	outcomes := make([]outcome, len(scenarios))
	sem := make(chan struct{}, bootConcurrency)
	var wg sync.WaitGroup
	for i, sc := range scenarios {
		s := spec(t, disk, sc.tests...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			outcomes[i] = boot(s, sc)
		}()
	}
	wg.Wait()

	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { check(t, sc, outcomes[i]) })
	}
	if after := sha256File(t, disk); after != before {
		t.Errorf("disk changed by booting: sha256 %s, was %s", after, before)
	}
}

// boot runs one scenario.
func boot(s qemuboot.Spec, sc scenario) outcome {
	var o outcome
	if sc.timeout != 0 {
		s.Timeout = sc.timeout
	}
	if sc.testTimeout != 0 {
		s.TestTimeout = sc.testTimeout
	}
	var pid atomic.Int64
	s.OnStart = func(p int) { pid.Store(int64(p)) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sawAgent atomic.Bool
	if sc.stayUp {
		// Watch the console until the agent has finished, give the
		// guest time to (wrongly) power off, then stop.
		go func() {
			for ctx.Err() == nil {
				b, _ := os.ReadFile(s.LogPath)
				log := plain(string(b))
				if strings.Contains(log, "Finished kiln-agent.service") && strings.Contains(log, " login: ") {
					sawAgent.Store(true)
					time.Sleep(20 * time.Second)
					cancel()
					return
				}
				time.Sleep(time.Second)
			}
		}()
	}
	o.res, o.err = qemuboot.Run(ctx, s)
	b, _ := os.ReadFile(s.LogPath)
	o.log, o.pid, o.sawAgent = plain(string(b)), int(pid.Load()), sawAgent.Load()
	return o
}

func check(t *testing.T, sc scenario, o outcome) {
	t.Logf("%+v, %v", o.res, o.err)
	if sc.stayUp {
		if !o.sawAgent {
			t.Fatalf("never saw the agent finish and a login prompt; Run gave %+v, %v\nconsole tail:\n%s", o.res, o.err, tail(o.log))
		}
		if !errors.Is(o.err, context.Canceled) {
			t.Errorf("Run ended with %+v, %v; want it still running until cancelled\nconsole tail:\n%s", o.res, o.err, tail(o.log))
		}
	} else {
		if o.err != nil {
			t.Fatalf("Run: %v", o.err)
		}
		if o.res.Passed != sc.passed || !strings.HasPrefix(o.res.Reason, sc.reason) || (sc.passed && o.res.Reason != "") {
			t.Errorf("passed %v, reason %q; want %v, %q\nconsole tail:\n%s", o.res.Passed, o.res.Reason, sc.passed, sc.reason, tail(o.log))
		}
		if o.res.Accel != "tcg" && o.res.Accel != "kvm" {
			t.Errorf("accel %q", o.res.Accel)
		}
	}
	// Result markers must be whole lines; the tests' own output may share
	// a line with something else on the console (a login prompt).
	for _, want := range sc.inLog {
		if strings.HasPrefix(want, "KILN-TEST-RESULT") && !hasLine(o.log, want) {
			t.Errorf("console has no line %q; tail:\n%s", want, tail(o.log))
		} else if !strings.Contains(o.log, want) {
			t.Errorf("console does not show %q; tail:\n%s", want, tail(o.log))
		}
	}
	for _, bad := range sc.notInLog {
		if strings.Contains(o.log, bad) {
			t.Errorf("console has %q", bad)
		}
	}
	if o.pid == 0 {
		t.Error("OnStart was not called")
	} else if err := syscall.Kill(o.pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("qemu (pid %d) still there after Run: %v", o.pid, err)
	}
}

// ProbeKVM and a real KVM boot agree: where the probe says no (as on
// machines whose /dev/kvm does not work), booting with KVM does not pass;
// where it says yes, it does.
func TestProbeKVMAgreesWithBoot(t *testing.T) {
	disk := needImage(t)
	ok := qemuboot.ProbeKVM(context.Background())
	t.Logf("ProbeKVM: %v", ok)
	if want := os.Getenv("KILN_EXPECT_KVM"); want != "" && (want == "1") != ok {
		t.Errorf("ProbeKVM %v, KILN_EXPECT_KVM=%s", ok, want)
	}
	s := spec(t, disk, "ok.sh")
	s.Accel = "kvm"
	s.Timeout = 3 * time.Minute
	res, err := qemuboot.Run(context.Background(), s)
	t.Logf("boot with kvm: %+v, %v", res, err)
	if ok && (err != nil || !res.Passed) {
		t.Errorf("ProbeKVM says KVM works, but the boot with KVM gave %+v, %v", res, err)
	}
	if !ok && err == nil && res.Passed {
		t.Errorf("ProbeKVM says KVM does not work, but the boot with KVM passed")
	}
}

func TestRunRejectsBadSpec(t *testing.T) {
	_, err := qemuboot.Run(context.Background(), qemuboot.Spec{Disk: "/nonexistent.raw", Accel: "fast"})
	if err == nil || !strings.Contains(err.Error(), `accel "fast"`) || !strings.Contains(err.Error(), "/nonexistent.raw") {
		t.Fatalf("error %v, want one naming the disk and the accel", err)
	}
}

func spec(t *testing.T, disk string, tests ...string) qemuboot.Spec {
	t.Helper()
	dir := t.TempDir()
	s := qemuboot.Spec{
		Disk:    disk,
		WorkDir: filepath.Join(dir, "work"),
		LogPath: filepath.Join(dir, "console.log"),
		Timeout: 8 * time.Minute,
		Accel:   "auto",
	}
	for _, name := range tests {
		s.Tests = append(s.Tests, testScript(t, name))
	}
	return s
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func readLog(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("console log: %v", err)
	}
	return plain(string(b))
}

var ansiRE = regexp.MustCompile("\x1b\\[[0-9;=?]*[A-Za-z]")

// plain is console text without carriage returns and terminal escapes.
func plain(s string) string {
	return ansiRE.ReplaceAllString(strings.ReplaceAll(s, "\r", ""), "")
}

func hasLine(log, line string) bool {
	for _, l := range strings.Split(log, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

func tail(log string) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}
