package main

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/report"
)

// destroyYAML is a local project whose dev deployment has a database
// process (writing into its data directory, which the project keeps), a
// web process after it and a VM after that; staging and tools are
// neighbours (tools depends on staging); prod is protected; sandbox is a
// template for personal deployments. Every unit is real: supervised
// processes, and qemu booting a disk whose firmware shell prints the
// ready line (a real image takes minutes under TCG; TestLocalDeployments
// boots one).
const destroyYAML = `project: demo
regions: [local-a, local-b]
cost_tag: {key: team, value: demo}
channels: {latest: {}}
backend: {local: {accel: tcg, boot_timeout: 4m}}
use_cases:
  app:
    architectures: [x86_64]
    tests: [tests/boot.sh]
deployments:
  dev:
    image: {use_case: app, channel: latest}
    units:
      db:
        process:
          command: [/bin/sh, -c, 'echo "rows of {deployment}" > "$KILN_DATA_DIR/db" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$KILN_PORT_HTTP"']
          ports: [http]
          stop_timeout: 5s
      web:
        after: [db]
        process:
          command: [/usr/bin/python3, -m, http.server, --bind, 127.0.0.1, "{port.http}"]
          ports: [http]
          stop_timeout: 5s
      box:
        after: [web]
        vm: {memory: 256MiB, ports: {http: 8080}, stop_timeout: 2s, restart: never}
    hooks:
      pre_destroy: [{name: backup, command: [./backup.sh]}]
  staging:
    image: {use_case: app, channel: latest}
    region: local-b
    units:
      db:
        process:
          command: [/bin/sh, -c, 'echo "rows of {deployment}" > "$KILN_DATA_DIR/db" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$KILN_PORT_HTTP"']
          ports: [http]
          stop_timeout: 5s
  tools:
    image: {use_case: app, channel: latest}
    region: local-b
    depends_on: [staging]
    units:
      cli: {process: {command: [/usr/bin/python3, -m, http.server, --bind, 127.0.0.1, "{port.http}"], ports: [http], stop_timeout: 5s}}
  prod:
    extends: staging
    protect: true
  sandbox:
    extends: staging
    template: true
    expire_after: 1h
destroy: {retain: [data-dir], confirm_above: 2, verify_timeout: 10s}
`

// newDestroyWorld writes the project, makes it a git repository and
// releases an image whose disk the VMs boot.
func newDestroyWorld(t *testing.T) *localWorld {
	t.Helper()
	t.Setenv("KILN_USER", "ops@example.com")
	w := &localWorld{dir: filepath.Join(t.TempDir(), "proj"), disk: shellDisk(t)}
	for path, data := range map[string]string{
		"kiln.yaml": destroyYAML, "tests/boot.sh": "#!/bin/sh\ntrue\n", ".gitignore": ".kiln/\n",
		"backup.sh": "#!/bin/sh\necho \"$KILN_DEPLOYMENT $KILN_OUTPUT_DB_URL_HTTP\" >> backup.log\n",
	} {
		p := filepath.Join(w.dir, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	w.cfg = filepath.Join(w.dir, "kiln.yaml")
	t.Cleanup(func() { destroyUnits(t, w.config(t)) })
	git(t, w.dir, "init", "-q")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "project")
	w.release(t, "app", "x86_64", "latest", time.Now())
	return w
}

// shellDisk makes a small disk on which the firmware finds no operating
// system and runs its UEFI shell's startup.nsh, which prints the line the
// guest agent prints once a real image is up.
func shellDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "fat")
	os.Mkdir(src, 0o755)
	if err := os.WriteFile(filepath.Join(src, "startup.nsh"), []byte("echo KILN-READY\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.raw")
	if out, err := exec.Command("qemu-img", "convert", "-O", "raw", "fat:"+src, disk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	return disk
}

// unitDirs lists the unit directories of deployment dep, read from disk.
func unitDirs(dir, dep string) []string {
	entries, _ := os.ReadDir(filepath.Join(dir, ".kiln", "deployments", dep))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// keptParts lists what teardowns kept of dep, read from disk.
func keptParts(dir, dep string) []string {
	out, _ := filepath.Glob(filepath.Join(dir, ".kiln", "retained", dep, "*", "*"))
	var parts []string
	for _, p := range out {
		if filepath.Base(p) != "retained.json" {
			parts = append(parts, p)
		}
	}
	return parts
}

// running lists what still runs of dep: supervisors and qemu processes,
// from the process table.
func running(dir, dep string) []string {
	var out []string
	for _, u := range []string{"db", "web", "box", "cli"} {
		for _, pid := range supervisors(dir, dep, u) {
			out = append(out, "supervisor of "+u+" ("+pid+")")
		}
	}
	for _, pid := range qemus(dir, dep, "box") {
		out = append(out, "qemu ("+pid+")")
	}
	return out
}

func TestDestroyLocal(t *testing.T) {
	w := newDestroyWorld(t)
	for _, dep := range []string{"dev", "staging", "tools"} {
		if out, errOut, code := w.kiln(t, "deploy", dep, "--apply"); code != 0 {
			t.Fatalf("deploy %s: exit %d\n%s%s", dep, code, out, errOut)
		}
	}
	dev := readRecord(t, w.dir, "dev")
	if len(running(w.dir, "dev")) != 4 {
		t.Fatalf("dev runs %v", running(w.dir, "dev"))
	}

	// The plan: exit 0, nothing changed, every resource in order, the
	// data directory kept.
	out, errOut, code := w.kiln(t, "destroy", "dev")
	if code != 0 || !strings.Contains(errOut, "nothing was changed; rerun with --apply") {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("kiln destroy dev:\n%s", out)
	for _, re := range []string{
		`(?s)first: pre-destroy hooks \[backup\].*` +
			`1 +stop +vm +box.*2 +stop +process +web.*3 +stop +process +db.*` +
			`4 +keep +data-dir +.kiln/deployments/dev/db/data +db +destroy.retain: data-dir.*` +
			`5 +destroy +vm +dev/box.*6 +with-unit +overlay +.kiln/deployments/dev/box/overlay.qcow2.*` +
			`7 +destroy +process +dev/web.*8 +destroy +process +dev/db`,
		`4 resources go; 1 kept \(listed in deployments/dev.json\)`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("plan lacks %s:\n%s", re, out)
		}
	}
	if len(running(w.dir, "dev")) != 4 {
		t.Fatal("the plan stopped something")
	}

	// Above confirm_above, nothing happens without --yes off a terminal.
	if _, errOut, code := w.kiln(t, "destroy", "dev", "--apply"); code != 2 || !strings.Contains(errOut, "without confirmation: rerun with --yes") {
		t.Errorf("unconfirmed: exit %d: %s", code, errOut)
	}
	// A protected deployment is refused; so is one another depends on.
	if out, _, code := w.kiln(t, "destroy", "prod", "--apply", "--yes"); code != 1 || !strings.Contains(out, "REFUSED: protected") {
		t.Errorf("protected: exit %d\n%s", code, out)
	}
	if out, _, code := w.kiln(t, "destroy", "staging", "--apply", "--yes"); code != 1 || !strings.Contains(out, "REFUSED: deployment tools depends on it") {
		t.Errorf("depended on: exit %d\n%s", code, out)
	}
	if len(running(w.dir, "dev")) != 4 || len(running(w.dir, "staging")) != 1 {
		t.Fatal("a refused destroy stopped something")
	}

	// Apply, with the record committed.
	out, errOut, code = w.kiln(t, "destroy", "dev", "--apply", "--yes", "--commit", "-o", "json")
	if code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errOut)
	}
	checkSchema(t, report.SchemaDestroy, out)
	var rep struct {
		Schema       string            `json:"schema"`
		Applied      bool              `json:"applied"`
		After        string            `json:"state_after"`
		Retained     []record.Retained `json:"retained"`
		Commit       string            `json:"commit"`
		Verification struct {
			Passed bool `json:"passed"`
			Kept   int  `json:"kept"`
		} `json:"verification"`
		Items []struct {
			Action, Type, ID, Outcome string
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Schema != "kiln.destroy/v1" || !rep.Applied || rep.After != "destroyed" || !rep.Verification.Passed || rep.Verification.Kept != 1 ||
		len(rep.Retained) != 1 || rep.Commit == "" || len(rep.Items) != 8 {
		t.Fatalf("report %+v\n%s", rep, out)
	}
	// Direct reads: nothing of dev runs, its unit directories are gone,
	// the database's data is kept where the record says, with its rows.
	if r := running(w.dir, "dev"); len(r) != 0 {
		t.Errorf("still running: %v", r)
	}
	if d := unitDirs(w.dir, "dev"); len(d) != 0 {
		t.Errorf("unit directories left: %v", d)
	}
	kept := keptParts(w.dir, "dev")
	if len(kept) != 1 || kept[0] != rep.Retained[0].ID {
		t.Fatalf("kept %v, the report says %+v", kept, rep.Retained)
	}
	if data, err := os.ReadFile(filepath.Join(kept[0], "db")); err != nil || string(data) != "rows of dev\n" {
		t.Errorf("kept data %q %v", data, err)
	}
	if _, err := httpGetErr(dev.Outputs["web.url.http"]); err == nil {
		t.Error("dev's web still answers")
	}
	r := readRecord(t, w.dir, "dev")
	if r.State != record.StateDestroyed || len(r.Retained) != 1 || r.Retained[0].ID != kept[0] || r.History[len(r.History)-1].Action != "destroy" {
		t.Errorf("record %s retained %+v", r.State, r.Retained)
	}
	if log := git(t, w.dir, "log", "-1", "--format=%s", "--name-only"); !strings.Contains(log, "dev: destroy (4 resources, 1 kept)") || !strings.HasSuffix(log, "deployments/dev.json") {
		t.Errorf("commit: %s", log)
	}
	if log, _ := os.ReadFile(filepath.Join(w.dir, "backup.log")); !strings.HasPrefix(string(log), "dev http://127.0.0.1:") || strings.Count(string(log), "\n") != 1 {
		t.Errorf("the hook saw %q", log)
	}
	// The neighbours run on.
	if len(running(w.dir, "staging")) != 1 || len(running(w.dir, "tools")) != 1 {
		t.Errorf("neighbours: staging %v tools %v", running(w.dir, "staging"), running(w.dir, "tools"))
	}
	if out, _, code := w.kiln(t, "status", "staging"); code != 0 {
		t.Errorf("staging: exit %d\n%s", code, out)
	}
	// A destroyed deployment is not deployed again by mistake.
	if out, _, code := w.kiln(t, "deploy", "dev", "--apply"); code != 1 || !strings.Contains(out, "REFUSED: destroyed") {
		t.Errorf("deploy after destroy: exit %d\n%s", code, out)
	}

	// Again: nothing to do.
	if out, _, code := w.kiln(t, "destroy", "dev", "--apply"); code != 0 || !strings.Contains(out, "nothing to destroy") {
		t.Errorf("again: exit %d\n%s", code, out)
	}
	// --purge-retained removes what was kept.
	if out, errOut, code := w.kiln(t, "destroy", "dev", "--apply", "--purge-retained"); code != 2 || !strings.Contains(errOut, "1 retained resources (--purge-retained)") {
		t.Errorf("unconfirmed purge: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := w.kiln(t, "destroy", "dev", "--apply", "--purge-retained", "--yes"); code != 0 {
		t.Fatalf("purge: exit %d\n%s%s", code, out, errOut)
	}
	if k := keptParts(w.dir, "dev"); len(k) != 0 {
		t.Errorf("after purge: %v", k)
	}
	if r := readRecord(t, w.dir, "dev"); len(r.Retained) != 0 {
		t.Errorf("record after purge: %+v", r.Retained)
	}

	// A personal deployment past its expiry is an orphan: cleanup
	// --orphans plans its teardown and destroys it with --apply.
	if out, errOut, code := w.kiln(t, "deploy", "--new", "alice", "--from", "sandbox", "--apply"); code != 0 {
		t.Fatalf("personal: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = w.kiln(t, "cleanup", "--orphans")
	if code != 0 || strings.Contains(out, "alice") {
		t.Errorf("cleanup before the expiry: exit %d\n%s", code, out)
	}
	r = readRecord(t, w.dir, "alice")
	r.Expires = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	if err := record.Save(w.dir, r); err != nil {
		t.Fatal(err)
	}
	out, _, code = w.kiln(t, "cleanup", "--orphans")
	if code != 0 || !regexp.MustCompile(`alice +sandbox +\S+ +1 +1 +destroy \(plan\)`).MatchString(out) || len(running(w.dir, "alice")) != 1 {
		t.Errorf("cleanup plan: exit %d\n%s", code, out)
	}
	out, errOut, code = w.kiln(t, "cleanup", "--orphans", "--apply", "--yes")
	if code != 0 || !regexp.MustCompile(`alice +sandbox +\S+ +1 +1 +destroyed`).MatchString(out) {
		t.Errorf("cleanup: exit %d\n%s%s", code, out, errOut)
	}
	if len(running(w.dir, "alice")) != 0 || readRecord(t, w.dir, "alice").State != record.StateDestroyed || len(keptParts(w.dir, "alice")) != 1 {
		t.Errorf("alice after cleanup: running %v, kept %v", running(w.dir, "alice"), keptParts(w.dir, "alice"))
	}
	if len(running(w.dir, "staging")) != 1 || len(running(w.dir, "tools")) != 1 {
		t.Error("cleanup touched the neighbours")
	}
}

// httpGetErr asks url and returns the error, if any.
func httpGetErr(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return resp.Status, nil
}

// TestDestroyLocalCrash kills `kiln destroy dev --apply`, a real process,
// with SIGKILL at boundaries along the teardown — after the hook, between
// stopping two units, after the data directory moved to where it is kept
// but before the record says so, between destroying two units, after the
// record says destroyed — each rerun killed again further on, then lets
// it finish. Read from the process table and the disk: nothing of dev
// runs or is left but the kept data, kept once and where the record says,
// the hook ran once, and staging runs on.
func TestDestroyLocalCrash(t *testing.T) {
	w := newDestroyWorld(t)
	for _, dep := range []string{"dev", "staging"} {
		if out, errOut, code := w.kiln(t, "deploy", dep, "--apply"); code != 0 {
			t.Fatalf("deploy %s: exit %d\n%s%s", dep, code, out, errOut)
		}
	}
	tally := crashTally{backend: "local", variant: "destroy: kill, then rerun (chained)"}
	args := []string{"destroy", "dev", "--apply", "--yes", "-c", w.cfg}
	killChain(t, &tally, args,
		"~end destroy hook pre_destroy[0] backup",
		"~progress stop unit web",
		"~end destroy keep data-dir",
		"~end destroy destroy unit box",
		"~record dev destroyed",
	)
	var left []string
	left = append(left, running(w.dir, "dev")...)
	left = append(left, unitDirs(w.dir, "dev")...)
	kept := keptParts(w.dir, "dev")
	r := readRecord(t, w.dir, "dev")
	if len(kept) != 1 {
		left = append(left, kept...)
	} else if data, err := os.ReadFile(filepath.Join(kept[0], "db")); err != nil || string(data) != "rows of dev\n" {
		t.Errorf("kept data %q %v", data, err)
	}
	if r.State != record.StateDestroyed || len(r.Retained) != 1 || len(kept) != 1 || r.Retained[0].ID != kept[0] {
		t.Errorf("record %s retained %+v; kept on disk %v", r.State, r.Retained, kept)
	}
	if len(left) > 0 {
		t.Errorf("left: %v", left)
	}
	tally.leaked = len(left)
	if log, _ := os.ReadFile(filepath.Join(w.dir, "backup.log")); strings.Count(string(log), "\n") != 1 {
		t.Errorf("the hook ran %d times: %q", strings.Count(string(log), "\n"), log)
	}
	if len(running(w.dir, "staging")) != 1 {
		t.Errorf("staging: %v", running(w.dir, "staging"))
	}
	tally.report(t)
}
