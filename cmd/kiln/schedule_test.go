package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/manifest"
)

// addSchedule gives every use case of the project at cfg the schedule.
func addSchedule(t *testing.T, cfg, schedule string) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, n := string(b), 0
	s = regexp.MustCompile(`(?m)^    architectures: (.*)$`).ReplaceAllStringFunc(s, func(line string) string {
		n++
		return line + "\n    schedule: \"" + schedule + "\""
	})
	if n == 0 {
		t.Fatalf("no use case in %s", cfg)
	}
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScheduleList(t *testing.T) {
	dir := initProject(t)
	cfg := filepath.Join(dir, "kiln.yaml")

	out, stderr, code := kiln(t, "schedule", "-c", cfg)
	if code != 0 || !strings.Contains(out, "no use case in "+cfg+" has a schedule") {
		t.Fatalf("schedule without schedules: exit %d\n%s%s", code, out, stderr)
	}

	addSchedule(t, cfg, "0 3 * * 1")
	out, stderr, code = kiln(t, "schedule", "-c", cfg, "-o", "json", "--from", "2026-11-21T12:00:00+01:00", "--count", "2")
	if code != 0 {
		t.Fatalf("schedule: exit %d\n%s", code, stderr)
	}
	var rep struct {
		Schema string    `json:"schema"`
		From   time.Time `json:"from"`
		Jobs   []struct {
			UseCase  string      `json:"use_case"`
			Arch     string      `json:"arch"`
			Schedule string      `json:"schedule"`
			Next     []time.Time `json:"next"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Schema != "kiln.schedule/v1" || len(rep.Jobs) != 1 {
		t.Fatalf("report %+v", rep)
	}
	j := rep.Jobs[0]
	// 2026-11-21 is a Saturday: the next Mondays at 03:00 UTC.
	if j.UseCase != "debian-sandbox" || j.Arch != "x86_64" || j.Schedule != "0 3 * * 1" || len(j.Next) != 2 ||
		!j.Next[0].Equal(time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)) || !j.Next[1].Equal(time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("job %+v", j)
	}

	out, _, code = kiln(t, "schedule", "-c", cfg, "--from", "2026-11-21T12:00:00Z", "--count", "1")
	if code != 0 || !strings.Contains(out, "debian-sandbox") || !strings.Contains(out, "2026-11-23T03:00:00Z") {
		t.Errorf("table: exit %d\n%s", code, out)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "tomorrow"}, `--from "tomorrow": not an RFC 3339 time`},
		{[]string{"--count", "0"}, "--count 0: give 1 to 100"},
		{[]string{"--channel", "stable"}, "--channel, --commit and --push go with --daemon"},
		{[]string{"--daemon", "--count", "2"}, "--count and --from are for listing"},
		{[]string{"--daemon", "--channel", "nightly"}, "--channel"},
		// The old boolean --run (--run ID names a run everywhere else).
		{[]string{"--run"}, "--run is now --daemon"},
	} {
		_, stderr, code := kiln(t, append([]string{"schedule", "-c", cfg}, tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("schedule %v: exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}

func TestScheduleRunNeedsASchedule(t *testing.T) {
	dir := initProject(t)
	_, stderr, code := kiln(t, "schedule", "--daemon", "-c", filepath.Join(dir, "kiln.yaml"))
	if code != 2 || !strings.Contains(stderr, "has a schedule") {
		t.Fatalf("schedule --daemon with no schedule: exit %d, %s", code, stderr)
	}
}

// kiln schedule --daemon, as a process on the aws backend (moto): at the next
// minute it releases the use case, the manifest lists it in every region,
// a second scheduler is refused meanwhile, and SIGTERM while it waits ends
// it with exit 0. With --commit each release commits its manifest.
func TestAWSScheduleRun(t *testing.T) {
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	w := newAWSWorld(t, "{public: true}")
	addSchedule(t, w.cfg, "* * * * *")
	os.WriteFile(filepath.Join(w.dir, ".gitignore"), []byte(".kiln/\n"), 0o644)
	git(t, w.dir, "init", "-q")
	// No identity of its own, not even one git would guess from the host.
	git(t, w.dir, "config", "user.useConfigOnly", "true")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "project")
	p := startKiln(t, nil, "schedule", "--daemon", "--commit", "-c", w.cfg)

	// A second scheduler for the same project is refused.
	waitFor(t, p, `msg="next release"`, 30*time.Second)
	second, code := runKiln(t, nil, "schedule", "--daemon", "-c", w.cfg)
	if code != 2 || !strings.Contains(second.stderr.String(), "another kiln schedule --daemon works on this project") {
		t.Errorf("second scheduler: exit %d\n%s", code, second.stderr.String())
	}

	// The first release starts at the next minute and takes seconds on moto.
	waitFor(t, p, `msg="release done"`, 3*time.Minute)
	m := regexp.MustCompile(`msg="release done" use_case=ci-runner arch=x86_64 run=(kiln-\S+)`).FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no release done line:\n%s", p.stderr.String())
	}
	run := m[1]
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(); code != 0 {
		t.Errorf("scheduler stopped with SIGTERM while waiting: exit %d\n%s", code, p.stderr.String())
	}

	// With --commit each scheduled release commits its manifest (as kiln:
	// the repository has no identity of its own).
	if got := git(t, w.dir, "log", "-1", "--format=%an: %s"); !strings.HasPrefix(got, "kiln: latest: ci-runner x86_64 ") || !strings.HasSuffix(got, "(kiln run "+run+")") {
		t.Errorf("last commit %q", got)
	}
	man, err := manifest.Load(filepath.Join(w.dir, "manifests/latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range awsRegions {
		e, ok := man["ci-runner"][region]
		if !ok || !e.Public {
			t.Errorf("manifest has no public entry in %s: %+v", region, man["ci-runner"])
			continue
		}
		imgs := w.images(t, region, run)
		if len(imgs) != 1 || *imgs[0].ImageId != e.ID {
			t.Errorf("%s: images of run %s: %d, manifest says %s", region, run, len(imgs), e.ID)
		}
	}
}

// waitFor waits until the process's stderr contains want.
func waitFor(t *testing.T, p *proc, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.stderr.String(), want) {
		if p.exited() || time.Now().After(deadline) {
			t.Fatalf("kiln never logged %q (exited %v):\n%s", want, p.exited(), p.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
