package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/cloud/local/debimage/debimagetest"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/report"
)

// These tests run real builds (mmdebstrap), real boots (qemu, TCG here) and
// real copies on the local backend. They share the base root filesystem
// cache of the debimage tests, so only the first build of a machine
// bootstraps.

// localProject is the example project from kiln init, with the shared base
// cache and the given boot timeout.
func localProject(t *testing.T, bootTimeout string) (dir, cfg string) {
	t.Helper()
	dir = initProject(t)
	cfg = filepath.Join(dir, "kiln.yaml")
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), "    # cache_dir: .kiln/cache", "    cache_dir: "+debimagetest.CacheDir(), 1)
	s = strings.Replace(s, "    # boot_timeout: 10m", "    boot_timeout: "+bootTimeout, 1)
	if s == string(data) {
		t.Fatal("example kiln.yaml changed: cannot set cache_dir and boot_timeout")
	}
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

// store opens the project's local store directly, to check what kiln did
// without going through kiln.
func store(t *testing.T, cfgPath string) (*local.Backend, *config.Config) {
	t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	b, err := local.New(cfg.Backend.Local, cfg.Backend.Local.Root, cfg.Regions)
	if err != nil {
		t.Fatal(err)
	}
	return b, cfg
}

// The release also carries recipe variables: a plain one given with --var
// and used in the release names, and a secret one from the environment,
// which the provisioning script uses (it keeps only a digest in the
// image, which the boot test checks) and prints; afterwards the secret is
// nowhere in the project, its state directory (journal, store, logs) or
// kiln's output.
func TestLocalReleaseEndToEnd(t *testing.T) {
	const secret = "local-5ecret-T0KEN-e2e-4410"
	dir, cfgPath := localProject(t, "5m")
	replaceIn(t, cfgPath, `  release: "{use_case}-{arch}-{version}"`, `  release: "{use_case}-{arch}-{var.edition}-{version}"`)
	appendFile(t, cfgPath, `variables:
  edition: {default: community}
  licence_key: {secret: true}
`)
	appendFile(t, filepath.Join(dir, "scripts/provision.sh"), `
# The recipe's variables: the edition in the image, of the licence key only
# a digest (the boot test checks it); a careless echo of the key itself.
echo "edition $edition" >/etc/kiln-demo-edition
printf '%s' "$licence_key" | sha256sum | cut -d' ' -f1 >/etc/kiln-demo-licence.sha256
echo "using licence $licence_key"
`)
	sum := sha256.Sum256([]byte(secret))
	appendFile(t, filepath.Join(dir, "tests/boot.sh"), `
grep -qx "edition enterprise" /etc/kiln-demo-edition || fail "edition not set by the variable"
grep -qx "`+hex.EncodeToString(sum[:])+`" /etc/kiln-demo-licence.sha256 || fail "the licence key did not reach provisioning"
`)
	t.Setenv("KILN_VAR_licence_key", secret)
	out, stderr, code := kiln(t, "release", "debian-sandbox", "-c", cfgPath, "-o", "json", "--var", "edition=enterprise")
	if code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, stderr)
	}
	defer func() {
		runs, _, _ := kiln(t, "runs", "-c", cfgPath, "-o", "json")
		if where := secretIn(t, secret, []string{dir}, map[string]string{"release stdout": out, "release stderr": stderr, "runs": runs}); len(where) > 0 {
			t.Errorf("the secret is in %v", where)
		}
	}()
	var rep report.Release
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	run := rep.Run.ID
	b, cfg := store(t, cfgPath)
	m, err := manifest.LoadValid(filepath.Join(dir, "manifests/latest.json"), manifest.LocalRules)
	if err != nil {
		t.Fatal(err)
	}
	var digest string
	for _, region := range cfg.Regions {
		imgs, err := b.ListImages(t.Context(), region, cloud.Filter{Tags: map[string]string{cloud.TagAssetID: run}})
		if err != nil || len(imgs) != 1 {
			t.Fatalf("%s: %d images of run %s (%v), want exactly 1", region, len(imgs), run, err)
		}
		img := imgs[0]
		e, ok := m.Get("debian-sandbox", region)
		if !ok || e.ID != img.ID || e.Name != img.Name || !e.Public || e.Architecture != "x86_64" || e.DeprecationTime == "" ||
			!strings.HasPrefix(img.Name, "debian-sandbox-x86_64-enterprise-") {
			t.Errorf("%s: manifest entry %+v, image %s %s", region, e, img.ID, img.Name)
		}
		for k, v := range map[string]string{
			cloud.TagManaged: "true", cloud.TagProject: "demo", cloud.TagAssetID: run, cloud.TagUseCase: "debian-sandbox", cloud.TagArch: "x86_64",
			cloud.TagPhase: cloud.PhaseReplicate, cloud.TagTest: cloud.TestPassed, "deployment_name": "demo",
		} {
			if img.Tags[k] != v {
				t.Errorf("%s: tag %s = %q, want %q", region, k, img.Tags[k], v)
			}
		}
		perms, err := b.LaunchPermissions(t.Context(), region, img.ID)
		if err != nil || !perms.Public {
			t.Errorf("%s: launch permissions %+v, %v", region, perms, err)
		}
		if digest == "" {
			digest = img.SHA256
		} else if img.SHA256 != digest {
			t.Errorf("%s: sha256 %s, other regions %s", region, img.SHA256, digest)
		}
		qcow2, err := b.DiskFile(t.Context(), region, img.ID, "qcow2")
		if err != nil {
			t.Fatalf("%s: no qcow2 export: %v", region, err)
		}
		if info, err := exec.Command("qemu-img", "info", qcow2).CombinedOutput(); err != nil || !strings.Contains(string(info), "file format: qcow2") {
			t.Errorf("%s: qemu-img info %s: %v\n%s", region, qcow2, err, info)
		}
	}
	if len(digest) != 64 {
		t.Fatalf("images have no sha256: %q", digest)
	}
	// The qcow2 export is in the report with its file, size and sha256.
	checkExports(t, rep.Publish.Exports, "qcow2")
	// The run is recorded as released.
	out, _, _ = kiln(t, "runs", "--run", run, "-c", cfgPath, "-o", "json")
	var rr report.Runs
	if err := json.Unmarshal([]byte(out), &rr); err != nil || len(rr.Runs) != 1 || rr.Runs[0].State != journal.RunSucceeded {
		t.Errorf("run %s after release: %v\n%s", run, err, out)
	}
	// Nothing temporary is left: the run's assets are its three images.
	out, _, code = kiln(t, "assets", "--run", run, "-c", cfgPath, "-o", "json")
	var ar report.Assets
	if err := json.Unmarshal([]byte(out), &ar); err != nil || code != 0 || len(ar.Assets) != 3 {
		t.Fatalf("assets of run %s: exit %d, %v\n%s", run, code, err, out)
	}
	for _, a := range ar.Assets {
		if a.Kind != cloud.KindImage {
			t.Errorf("left over: %s %s", a.Kind, a.ID)
		}
		checkExports(t, a.Exports, "qcow2")
	}
	if out, _, code := kiln(t, "drift", "-c", cfgPath); code != 0 {
		t.Fatalf("drift after release: exit %d\n%s", code, out)
	}
}

// TestLocalFailures shares one candidate across the failure cases: a failing
// provisioning step, a failing guest test, a guest that never reports, and a
// corrupted blob that replication detects.
func TestLocalFailures(t *testing.T) {
	dir, cfgPath := localProject(t, "5m")
	write := func(rel, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	goodScript, _ := os.ReadFile(filepath.Join(dir, "scripts/provision.sh"))
	goodTest, _ := os.ReadFile(filepath.Join(dir, "tests/boot.sh"))
	b, cfg := store(t, cfgPath)

	t.Run("provisioning step fails", func(t *testing.T) {
		write("scripts/provision.sh", "#!/bin/sh\necho 'about to fail: no such package'\nexit 7\n")
		out, stderr, code := kiln(t, "build", "debian-sandbox", "-c", cfgPath)
		if code != 2 {
			t.Fatalf("build: exit %d, want 2\n%s%s", code, out, stderr)
		}
		for _, want := range []string{"set the message of the day and add a user", "exit status 7", "about to fail: no such package"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("error lacks %q:\n%s", want, stderr)
			}
		}
		for _, region := range cfg.Regions {
			as, _ := b.ListAssets(t.Context(), region, cloud.Filter{Tags: map[string]string{cloud.TagManaged: "true"}})
			if len(as) != 0 {
				t.Errorf("%s: a failed build left %v", region, as)
			}
		}
		write("scripts/provision.sh", string(goodScript))
	})

	out, stderr, code := kiln(t, "build", "debian-sandbox", "-c", cfgPath)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, stderr)
	}
	run := strings.TrimSpace(out)

	t.Run("guest test fails", func(t *testing.T) {
		write("tests/boot.sh", "#!/bin/sh\necho 'checking something that is wrong'\nexit 3\n")
		out, stderr, code := kiln(t, "test", "--run", run, "-c", cfgPath)
		if code != 1 || !strings.Contains(out+stderr, "boot.sh") || !strings.Contains(out+stderr, "3") {
			t.Fatalf("test: exit %d, want 1\n%s%s", code, out, stderr)
		}
		_, stderr, code = kiln(t, "replicate", "--run", run, "-c", cfgPath)
		if code != 2 || !strings.Contains(stderr, "failed its tests") {
			t.Fatalf("replicate after failed tests: exit %d\n%s", code, stderr)
		}
	})

	t.Run("guest never reports", func(t *testing.T) {
		write("tests/boot.sh", "#!/bin/sh\nsleep 100000\n")
		data, _ := os.ReadFile(cfgPath)
		os.WriteFile(cfgPath, []byte(strings.Replace(string(data), "boot_timeout: 5m", "boot_timeout: 50s", 1)), 0o644)
		defer os.WriteFile(cfgPath, data, 0o644)
		out, stderr, code := kiln(t, "test", "--run", run, "--force-boot", "-c", cfgPath)
		if code != 1 || !strings.Contains(out+stderr, "timed out") {
			t.Fatalf("test: exit %d, want 1 and a timeout\n%s%s", code, out, stderr)
		}
	})

	t.Run("corrupted blob", func(t *testing.T) {
		write("tests/boot.sh", string(goodTest))
		if _, stderr, code := kiln(t, "test", "--run", run, "--force-boot", "-c", cfgPath); code != 0 {
			t.Fatalf("test: exit %d\n%s", code, stderr)
		}
		cands, _ := b.ListImages(t.Context(), cfg.BuildRegion, cloud.Filter{Tags: map[string]string{cloud.TagAssetID: run, cloud.TagPhase: cloud.PhaseBuild}})
		if len(cands) != 1 {
			t.Fatalf("%d candidates", len(cands))
		}
		blob, err := b.DiskFile(t.Context(), cfg.BuildRegion, cands[0].ID, "raw")
		if err != nil {
			t.Fatal(err)
		}
		flipByte(t, blob, 1<<20)
		_, stderr, code := kiln(t, "replicate", "--run", run, "-c", cfgPath)
		if code != 2 || !strings.Contains(stderr, "sha256") {
			t.Fatalf("replicate from a corrupted blob: exit %d\n%s", code, stderr)
		}
		for _, region := range cfg.Regions {
			imgs, _ := b.ListImages(t.Context(), region, cloud.Filter{Tags: map[string]string{cloud.TagAssetID: run, cloud.TagPhase: cloud.PhaseReplicate}})
			for _, img := range imgs {
				if img.State == cloud.StateAvailable {
					t.Errorf("%s: copy %s of a corrupted blob is available", region, img.ID)
				}
			}
		}
	})
}

// flipByte inverts one byte of a file in place (blobs are read-only).
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1)
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatal(err)
	}
	buf[0] ^= 0xff
	if _, err := f.WriteAt(buf, off); err != nil {
		t.Fatal(err)
	}
}

// appendFile appends text to the file at path.
func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// replaceIn replaces old, which must be there, with new in the file at path.
func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}
