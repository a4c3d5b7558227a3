package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/manifest"
)

// TestLocalDeployments runs the README's flow with the kiln binary on the
// example project: a real build (mmdebstrap) and boot test, then the
// example image deployed as qemu VMs that answer /health and /version on
// a forwarded loopback port, verified, promoted from dev to staging, a
// bad release caught by the version check and refused promotion, a
// rollback and a clean shutdown. The deploy to dev and the promotion to
// staging go through the crash harness: killed at their step boundaries
// and during the VM's boot, rerun each time, they still end with one VM
// each. One build; four VM boots, each one the scenario needs.
func TestLocalDeployments(t *testing.T) {
	dir, cfg := localProject(t, "10m")
	t.Cleanup(func() {
		_, c := store(t, cfg)
		destroyUnits(t, c)
	})
	git(t, dir, "init", "-q")
	if p, code := runKiln(t, nil, "release", "debian-sandbox", "-c", cfg); code != 0 {
		t.Fatalf("release: exit %d\n%s", code, p.stderr.String())
	}
	git(t, dir, "add", "-A")
	git(t, dir, "commit", "-qm", "release")
	tally := crashTally{backend: "local", variant: "deploy and promote: kill, then rerun (chained)"}
	defer tally.report(t)

	// A plan changes nothing.
	if out := kilnOK(t, 0, "deploy", "dev", "-c", cfg); !regexp.MustCompile(`web +vm +create`).MatchString(out) {
		t.Errorf("plan:\n%s", out)
	}
	if len(qemus(dir, "dev", "web")) != 0 {
		t.Fatal("a plan started a VM")
	}

	// Deploy: a VM on an overlay of the image, its port forwarded,
	// verified; the record committed and tagged. Killed six times on the
	// way.
	crashChain(t, &tally, dir, "dev", []string{"deploy", "dev", "--apply", "--commit", "--tag", "-c", cfg}, []string{
		"~record dev deploying",
		"~begin deploy unit web",
		"boot",
		"~end deploy unit web",
		"~record dev units up",
		"~record dev deployed",
	})
	testDeployEndToEnd(t, &tally, dir, cfg)
}

// kilnOK runs the kiln binary and fails the test unless it exits with
// want; it returns standard output.
func kilnOK(t *testing.T, want int, args ...string) string {
	t.Helper()
	start := time.Now()
	p, code := runKiln(t, nil, args...)
	t.Logf("kiln %s: exit %d in %s", strings.Join(args[:min(len(args), 4)], " "), code, time.Since(start).Round(time.Second))
	if code != want {
		t.Fatalf("kiln %v: exit %d, want %d\n%s\n%s", args, code, want, p.stdout.String(), p.stderr.String())
	}
	return p.stdout.String()
}

// httpGet asks a deployment's unit directly, not through kiln.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func servedVersion(t *testing.T, url string) string {
	t.Helper()
	var v struct{ Version string }
	body := httpGet(t, url+"/version")
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("GET %s/version: %q: %v", url, body, err)
	}
	return v.Version
}

// qemus lists the qemu processes running a deployment's unit, from the
// process table.
func qemus(dir, dep, unit string) []string {
	overlay := filepath.Join(dir, ".kiln", "deployments", dep, unit, "overlay.qcow2")
	out, _ := exec.Command("pgrep", "-f", "qemu-system-x86_64 .*"+regexp.QuoteMeta(overlay)).Output()
	return strings.Fields(string(out))
}

// supervisors lists the supervisor processes of a deployment's unit.
func supervisors(dir, dep, unit string) []string {
	unitDir := filepath.Join(dir, ".kiln", "deployments", dep, unit)
	out, _ := exec.Command("pgrep", "-f", "__kiln-supervise "+regexp.QuoteMeta(unitDir)+"$").Output()
	return strings.Fields(string(out))
}

func testDeployEndToEnd(t *testing.T, tally *crashTally, dir, cfg string) {
	dev := readRecord(t, dir, "dev")
	url := dev.Outputs["web.url.http"]
	if dev.State != record.StateDeployed || !strings.HasPrefix(url, "http://127.0.0.1:") || len(dev.Verifications) != 1 || !dev.Verifications[0].Passed {
		t.Fatalf("dev's record: state %s outputs %v verifications %+v", dev.State, dev.Outputs, dev.Verifications)
	}
	m, err := manifest.LoadValid(filepath.Join(dir, "manifests/latest.json"), manifest.LocalRules)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := m.Get("debian-sandbox", "local-a")
	if dev.Release.Images["local-a"] != e.ID || dev.Release.ManifestCommit == "" || len(dev.Release.Images) != 3 {
		t.Errorf("dev's release %+v, manifest entry %s", dev.Release, e.ID)
	}
	version := dev.Release.Version
	if got := servedVersion(t, url); got != version {
		t.Errorf("the VM answers version %q, want %q", got, version)
	}
	if got := httpGet(t, url+"/health"); got != "ok\n" {
		t.Errorf("/health = %q", got)
	}
	if n := len(qemus(dir, "dev", "web")); n != 1 {
		t.Errorf("%d qemu processes for dev", n)
	}
	if tags := git(t, dir, "tag", "--list", "deploy/dev/*"); tags == "" {
		t.Error("no deploy tag")
	}
	kilnOK(t, 0, "verify", "dev", "-c", cfg)

	// Promote: the same release, another region, its own VM; killed on
	// the way too.
	crashChain(t, tally, dir, "staging", []string{"promote", "--from", "dev", "--to", "staging", "--apply", "--commit", "-c", cfg}, []string{
		"~record staging deploying",
		"boot",
		"~end deploy unit web",
	})
	staging := readRecord(t, dir, "staging")
	if staging.Release.ID != dev.Release.ID || staging.Region != "local-b" || staging.Release.PromotedFrom != "dev" {
		t.Errorf("staging's release %+v in %s", staging.Release, staging.Region)
	}
	if got := servedVersion(t, staging.Outputs["web.url.http"]); got != version {
		t.Errorf("staging answers version %q", got)
	}
	git(t, dir, "tag", "good")

	// A bad release: the same disk published as another version. The
	// version check catches it, and promotion refuses it.
	b, _ := store(t, cfg)
	raw, err := b.DiskFile(t.Context(), "local-a", e.ID, "raw")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := b.ImportImage(t.Context(), local.ImportInput{
		Region: "local-a", Name: "debian-sandbox-x86_64-bad", Arch: "x86_64", Disk: copyFile(t, raw),
		Tags: map[string]string{cloud.TagManaged: "true", cloud.TagUseCase: "debian-sandbox", cloud.TagVersion: "bad", cloud.TagArch: "x86_64", cloud.TagTest: cloud.TestPassed},
	})
	if err != nil {
		t.Fatal(err)
	}
	e2 := e
	e2.ID, e2.Name = bad.ID, bad.Name
	m.Set("debian-sandbox", "local-a", e2)
	if err := manifest.Write(filepath.Join(dir, "manifests/latest.json"), m); err != nil {
		t.Fatal(err)
	}
	out := kilnOK(t, 1, "deploy", "dev", "--apply", "-c", cfg)
	if !strings.Contains(out, `version is "`+version+`", want "bad"`) {
		t.Errorf("the failed verification does not say why:\n%s", out)
	}
	out = kilnOK(t, 1, "promote", "--from", "dev", "--to", "staging", "--apply", "-c", cfg)
	if !regexp.MustCompile(`verified +FAIL`).MatchString(out) {
		t.Errorf("promotion of a release that failed verification:\n%s", out)
	}
	if readRecord(t, dir, "staging").Release.ID != dev.Release.ID {
		t.Error("a refused promotion changed staging")
	}

	// Roll dev back to the good release: verified, and held.
	kilnOK(t, 0, "rollback", "dev", "--ref", "good", "--apply", "-c", cfg)
	dev = readRecord(t, dir, "dev")
	if dev.Release.Version != version || dev.Hold == nil || servedVersion(t, dev.Outputs["web.url.http"]) != version {
		t.Errorf("after the rollback: release %s hold %+v", dev.Release.Version, dev.Hold)
	}
	if n := len(qemus(dir, "dev", "web")); n != 1 {
		t.Errorf("%d qemu processes for dev after the rollback", n)
	}
	kilnOK(t, 0, "status", "-c", cfg)

	// The kill switch shuts the VM down cleanly over QMP.
	kilnOK(t, 0, "disable", "dev", "-c", cfg)
	if n := len(qemus(dir, "dev", "web")); n != 0 {
		t.Errorf("%d qemu processes for a disabled dev", n)
	}
	con, _ := os.ReadFile(filepath.Join(dir, ".kiln", "deployments", "dev", "web", "console.log"))
	if !strings.Contains(string(con), "reboot: Power down") {
		t.Errorf("dev's console shows no clean power-down; its tail:\n%s", tail(string(con), 1500))
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "disk.raw")
	if out, err := exec.Command("cp", "--sparse=always", "--reflink=auto", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return dst
}
