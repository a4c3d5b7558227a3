package aws

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// sandbox runs generated user data on the host: a fake shutdown on PATH
// records the power-off, and the KILN_* variables move the work directory,
// console and test output into dir.
type sandbox struct {
	dir, console, out, shutdownLog string
	path                           string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &sandbox{
		dir:         dir,
		console:     filepath.Join(dir, "console"),
		out:         filepath.Join(dir, "test-output"),
		shutdownLog: filepath.Join(dir, "shutdown.log"),
		path:        bin + ":" + os.Getenv("PATH"),
	}
	for _, f := range []string{s.console, s.out} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(bin, "shutdown"), "#!/bin/sh\necho \"$@\" >>"+s.shutdownLog+"\n", 0o755)
	return s
}

// work is where the bootstrap unpacks the bundle in the sandbox.
func (s *sandbox) work() string { return filepath.Join(s.dir, "work") }

func (s *sandbox) run(t *testing.T, script []byte) (console string, exit int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-s")
	cmd.Stdin = bytes.NewReader(script)
	cmd.Env = append(os.Environ(), "PATH="+s.path, "KILN_WORK="+s.work(),
		"KILN_CONSOLES="+s.console, "KILN_OUT="+s.out, "KILN_CLOUD_DIR="+filepath.Join(s.dir, "cloud"))
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run script: %v\n%s", err, out)
	}
	data, err := os.ReadFile(s.console)
	if err != nil {
		t.Fatal(err)
	}
	if sd, _ := os.ReadFile(s.shutdownLog); strings.TrimSpace(string(sd)) != "-h now" {
		t.Errorf("script did not power off with shutdown -h now (got %q); output:\n%s", sd, out)
	}
	return string(data), exit
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// inline is the user data that carries b itself.
func inline(t *testing.T, b bundle, marker string) []byte {
	t.Helper()
	ud, err := bootstrap(b, "", marker)
	if err != nil {
		t.Fatal(err)
	}
	return ud
}

func TestProvisionBundleRuns(t *testing.T) {
	sb := newSandbox(t)
	recipe := filepath.Join(sb.dir, "recipe")
	dest := filepath.Join(sb.dir, "image")
	steps := filepath.Join(dest, "steps.log")
	write(t, steps, "", 0o644)
	write(t, filepath.Join(recipe, "one.sh"), "#!/bin/sh\necho \"one $flavour $token\" >>"+steps+"\n", 0o644)
	write(t, filepath.Join(recipe, "two.sh"), "#!/bin/sh\necho \"two $(cat "+dest+"/etc/motd)\" >>"+steps+"\n", 0o644)
	write(t, filepath.Join(recipe, "files/motd"), "it's \"quoted\" $HOME\n", 0o644)
	write(t, filepath.Join(recipe, "tree/a.txt"), "A", 0o644)
	write(t, filepath.Join(recipe, "tree/sub/b.txt"), "B", 0o600)
	write(t, filepath.Join(recipe, "play/site.yml"), "- hosts: all\n  roles: [r]\n", 0o644)
	write(t, filepath.Join(recipe, "play/roles/r/tasks/main.yml"), "- debug: {msg: role}\n", 0o644)
	// A stand-in for ansible-playbook records how it was called, what
	// its extra vars file holds and who may read it, and that the
	// playbook's role came along.
	write(t, filepath.Join(sb.dir, "bin", "ansible-playbook"), `#!/bin/sh
echo "ansible $*" >>`+steps+`
for a; do case $a in @*) f=${a#@}; cat "$f" >>`+steps+`; echo >>`+steps+`; stat -c 'vars mode %a' "$f" >>`+steps+`;; esac; done
test -f roles/r/tasks/main.yml && echo "role present" >>`+steps+`
`, 0o755)
	owner := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())

	vars := []cloud.Var{{Name: "flavour", Value: "it's crisp"}, {Name: "token", Value: "s3cr3t-t0ken-value", Secret: true}}
	b, err := provisionBundle(recipe, "", []config.Step{
		{Name: "first", Shell: "one.sh"},
		{File: &config.FileStep{Source: "files/motd", Destination: dest + "/etc/motd", Mode: "0640", Owner: owner}},
		{Shell: "two.sh"},
		{File: &config.FileStep{Source: "tree", Destination: dest + "/opt/tree", Owner: owner}},
		{Name: "play", Ansible: &config.AnsibleStep{Playbook: "play/site.yml", ExtraVars: map[string]string{"greeting": "it's me", "flavour": "step wins"}}},
	}, vars)
	if err != nil {
		t.Fatal(err)
	}
	if !b.secret {
		t.Error("a bundle with a secret variable is not marked secret")
	}
	script := inline(t, b, buildMarker)
	for _, bad := range []string{"KILN-BUILD-RESULT", "s3cr3t-t0ken-value"} {
		if bytes.Contains(script, []byte(bad)) {
			t.Errorf("the user data contains %q", bad)
		}
	}
	console, exit := sb.run(t, script)
	if exit != 0 {
		t.Fatalf("exit %d, console:\n%s", exit, console)
	}
	if mk := findMarker(console, buildMarker); !mk.found || !mk.passed {
		t.Errorf("console %q: want a PASS build marker", console)
	}
	got, _ := os.ReadFile(steps)
	wantSteps := "one it's crisp s3cr3t-t0ken-value\ntwo it's \"quoted\" $HOME\nansible -i localhost, -c local -e @" +
		sb.work() + "/vars/ansible-5.json site.yml\n"
	if !strings.HasPrefix(string(got), wantSteps) {
		t.Errorf("steps ran as\n%s\nwant prefix\n%s", got, wantSteps)
	}
	for _, want := range []string{`"flavour":"step wins"`, `"greeting":"it's me"`, `"token":"s3cr3t-t0ken-value"`, "vars mode 600", "role present"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("ansible did not get %q; log:\n%s", want, got)
		}
	}
	if fi, err := os.Stat(dest + "/etc/motd"); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("motd: %v, mode %v; want 0640", err, fi)
	}
	for f, want := range map[string]string{"a.txt": "A", "sub/b.txt": "B"} {
		if data, err := os.ReadFile(filepath.Join(dest, "opt/tree", f)); err != nil || string(data) != want {
			t.Errorf("tree/%s: %q, %v; want %q", f, data, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dest, "opt/tree/sub/b.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("tree/sub/b.txt mode %v, %v; want 0600 kept", fi, err)
	}
	if _, err := os.Stat(sb.work()); !os.IsNotExist(err) {
		t.Errorf("bundle directory left behind: %v", err)
	}
}

// The bootstrap fetches a staged bundle with a real client (curl here),
// checks its digest before anything of it runs, and refuses a bundle that
// is not the one kiln staged.
func TestBootstrapFetchesAndChecks(t *testing.T) {
	recipe := t.TempDir()
	marker := filepath.Join(t.TempDir(), "ran")
	write(t, filepath.Join(recipe, "s.sh"), "#!/bin/sh\ntouch "+marker+"\n", 0o644)
	good, err := provisionBundle(recipe, "", []config.Step{{Shell: "s.sh"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := provisionBundle(recipe, "", []config.Step{{Shell: "s.sh"}, {Shell: "s.sh"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	served := good.data
	fetched := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched++
		if r.URL.Query().Get("X-Amz-Signature") != "sig" {
			http.Error(w, "no signature", http.StatusForbidden)
			return
		}
		w.Write(served)
	}))
	defer srv.Close()
	url := srv.URL + "/bucket/kiln/staging/run/token.tgz?X-Amz-Signature=sig"

	ud, err := bootstrap(good, url, buildMarker)
	if err != nil {
		t.Fatal(err)
	}
	if len(ud) > 4<<10 {
		t.Errorf("a staged bootstrap is %d bytes; it should stay small", len(ud))
	}
	sb := newSandbox(t)
	console, exit := sb.run(t, ud)
	if mk := findMarker(console, buildMarker); exit != 0 || !mk.passed || fetched != 1 {
		t.Fatalf("exit %d, %d fetches, console:\n%s", exit, fetched, console)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the bundle's step did not run: %v", err)
	}

	// The bucket now serves other bytes than the digest in the user data.
	os.Remove(marker)
	served = other.data
	sb = newSandbox(t)
	console, exit = sb.run(t, ud)
	mk := findMarker(console, buildMarker)
	if exit == 0 || mk.passed || !strings.Contains(mk.detail, "bootstrap: the bundle's sha256 is "+other.sha256+", not "+good.sha256) {
		t.Errorf("exit %d, marker %+v; want a FAIL naming both digests", exit, mk)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Error("a step of a bundle with the wrong digest ran")
	}
}

func TestBundleDeterministic(t *testing.T) {
	recipe := t.TempDir()
	write(t, filepath.Join(recipe, "s.sh"), "#!/bin/sh\n", 0o644)
	write(t, filepath.Join(recipe, "tree/x"), "x", 0o644)
	steps := []config.Step{{Shell: "s.sh"}, {File: &config.FileStep{Source: "tree", Destination: "/x"}}}
	a, err := provisionBundle(recipe, "", steps, []cloud.Var{{Name: "v", Value: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(recipe, "tree/x"), now, now)
	b, err := provisionBundle(recipe, "", steps, []cloud.Var{{Name: "v", Value: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if a.sha256 != b.sha256 || !bytes.Equal(a.data, b.data) {
		t.Errorf("two bundles of the same recipe differ: %s %s", a.sha256, b.sha256)
	}
	sum := sha256.Sum256(a.data)
	if hex.EncodeToString(sum[:]) != a.sha256 {
		t.Error("the bundle's digest is not the sha256 of its bytes")
	}
}

func TestProvisionBundleStopsAtFailure(t *testing.T) {
	sb := newSandbox(t)
	recipe := filepath.Join(sb.dir, "recipe")
	log := filepath.Join(sb.dir, "steps.log")
	write(t, filepath.Join(recipe, "ok.sh"), "#!/bin/sh\necho ok >>"+log+"\n", 0o644)
	write(t, filepath.Join(recipe, "bad.sh"), "#!/bin/sh\nexit 7\n", 0o644)
	write(t, filepath.Join(recipe, "never.sh"), "#!/bin/sh\necho never >>"+log+"\n", 0o644)
	b, err := provisionBundle(recipe, "", []config.Step{{Shell: "ok.sh"}, {Name: "breaks", Shell: "bad.sh"}, {Shell: "never.sh"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	console, exit := sb.run(t, inline(t, b, buildMarker))
	if exit == 0 {
		t.Error("script exited 0 after a failed step")
	}
	mk := findMarker(console, buildMarker)
	if !mk.found || mk.passed || mk.detail != "step 2 (breaks) exited with status 7" {
		t.Errorf("marker %+v from console %q; want FAIL naming step 2 and status 7", mk, console)
	}
	if got, _ := os.ReadFile(log); string(got) != "ok\n" {
		t.Errorf("steps ran: %q, want only the first", got)
	}
}

func TestProvisionBundleBadInput(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f"), "x", 0o644)
	outside := t.TempDir()
	write(t, filepath.Join(outside, "passwd"), "root:x:0:0", 0o644)
	os.Symlink(filepath.Join(outside, "passwd"), filepath.Join(dir, "passwd-link"))
	tests := []struct {
		name  string
		steps []config.Step
		want  string
	}{
		{"missing shell script", []config.Step{{Shell: "nope.sh"}}, `provision[0].shell: "nope.sh"`},
		{"relative destination", []config.Step{{File: &config.FileStep{Source: "f", Destination: "etc/x"}}}, `provision[0].file.destination "etc/x"`},
		{"bad mode", []config.Step{{File: &config.FileStep{Source: "f", Destination: "/x", Mode: "rw"}}}, `provision[0].file.mode "rw"`},
		{"missing playbook", []config.Step{{Shell: "f"}, {Ansible: &config.AnsibleStep{Playbook: "p.yml"}}}, `provision[1].ansible.playbook: "p.yml"`},
		{"empty step", []config.Step{{Name: "x"}}, "provision[0]: no shell, file or ansible"},
		{"source up and out", []config.Step{{File: &config.FileStep{Source: "../../../../../../etc/hostname", Destination: "/x"}}}, "leads outside the project"},
		{"absolute source", []config.Step{{File: &config.FileStep{Source: "/etc/shadow", Destination: "/x"}}}, "leads outside the project"},
		{"source through a link", []config.Step{{File: &config.FileStep{Source: "passwd-link", Destination: "/x"}}}, "leads outside the project"},
		{"shell outside", []config.Step{{Shell: "/etc/passwd"}}, "leads outside the project"},
		{"playbook through a link", []config.Step{{Ansible: &config.AnsibleStep{Playbook: "passwd-link"}}}, "leads outside the project"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := provisionBundle(dir, "", tt.steps, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestTestBundle(t *testing.T) {
	tests := []struct {
		name   string
		tests  map[string]string // file -> body, run in name order
		passed bool
		reason string
	}{
		{"all pass", map[string]string{"a.sh": "exit 0", "b.sh": "echo fine"}, true, ""},
		{"second fails", map[string]string{"a.sh": "exit 0", "b.sh": "echo broken; exit 3", "c.sh": "exit 4"}, false, "test tests/b.sh failed with exit status 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb := newSandbox(t)
			var paths []string
			for _, f := range []string{"a.sh", "b.sh", "c.sh"} {
				if body, ok := tt.tests[f]; ok {
					write(t, filepath.Join(sb.dir, "recipe/tests", f), "#!/bin/sh\n"+body+"\n", 0o644)
					paths = append(paths, "tests/"+f)
				}
			}
			b, err := testBundle(filepath.Join(sb.dir, "recipe"), paths)
			if err != nil {
				t.Fatal(err)
			}
			script := inline(t, b, testMarker)
			if bytes.Contains(script, []byte("KILN-TEST-RESULT")) {
				t.Error("the script contains the marker text itself")
			}
			console, _ := sb.run(t, script)
			mk := findMarker(console, testMarker)
			if !mk.found || mk.passed != tt.passed {
				t.Fatalf("marker %+v from console %q, want passed=%v", mk, console, tt.passed)
			}
			if !tt.passed {
				if got := testFailure(mk.detail); got != tt.reason {
					t.Errorf("reason %q, want %q", got, tt.reason)
				}
				if out, _ := os.ReadFile(sb.out); !strings.Contains(string(out), "broken") {
					t.Errorf("test output %q does not hold the failing test's output", out)
				}
			}
		})
	}
}

func TestFindMarker(t *testing.T) {
	tests := []struct {
		console string
		want    marker
	}{
		{"", marker{}},
		{"boot\nKILN-TEST-RESULT: PASS\r\n", marker{found: true, passed: true}},
		{"[   12.345] KILN-TEST-RESULT: FAIL t.sh 2\n", marker{found: true, detail: "t.sh 2"}},
		{"KILN-TEST-RESULT: PASSED\n", marker{}},
		{"KILN-TEST-RESULT: FAIL a 1\nKILN-TEST-RESULT: PASS\n", marker{found: true, passed: true}},
		{"KILN-BUILD-RESULT: PASS\n", marker{}},
	}
	for _, tt := range tests {
		if got := findMarker(tt.console, testMarker); got != tt.want {
			t.Errorf("findMarker(%q) = %+v, want %+v", tt.console, got, tt.want)
		}
	}
}

// A bundle too big for user data is an error naming the way out; a
// staged one is small whatever the recipe's size.
func TestBootstrapInlineLimit(t *testing.T) {
	dir := t.TempDir()
	noise := make([]byte, 40<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	write(t, filepath.Join(dir, "blob"), string(noise), 0o644)
	b, err := provisionBundle(dir, "", []config.Step{{File: &config.FileStep{Source: "blob", Destination: "/blob"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap(b, "", buildMarker); err == nil || !strings.Contains(err.Error(), "EC2 allows 16384: set backend.aws.bucket") {
		t.Errorf("error %v, want one about the 16 KiB limit naming backend.aws.bucket", err)
	}
	ud, err := bootstrap(b, "https://bucket.s3.amazonaws.com/kiln/staging/x.tgz?X-Amz-Signature=abc", buildMarker)
	if err != nil || len(ud) > 4<<10 {
		t.Errorf("staged bootstrap: %d bytes, %v", len(ud), err)
	}
}

// TestTestBundleStaysInTheProject: a test path that leads out of the
// project would put a host file into the test instance's bundle.
func TestTestBundleStaysInTheProject(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "tests/ok.sh"), "#!/bin/sh\n", 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "tests/link.sh"))
	for _, p := range []string{"/etc/passwd", "../../../../../etc/passwd", "tests/link.sh"} {
		if _, err := testBundle(dir, []string{"tests/ok.sh", p}); err == nil || !strings.Contains(err.Error(), "leads outside the project") {
			t.Errorf("tests [%s]: %v", p, err)
		}
	}
}

// TestProvisionBundleKeepsVarsSecret: extra vars go to ansible in a file
// only root reads, removed when ansible ends (also when it fails), never
// on its command line; cloud-init's copy of the user data is removed
// before the image is made.
func TestProvisionBundleKeepsVarsSecret(t *testing.T) {
	const secret = "s3cret-db-pw"
	for _, status := range []int{0, 3} {
		t.Run(fmt.Sprint("ansible exits ", status), func(t *testing.T) {
			sb := newSandbox(t)
			recipe := filepath.Join(sb.dir, "recipe")
			write(t, filepath.Join(recipe, "site.yml"), "- hosts: all\n", 0o644)
			seen := filepath.Join(sb.dir, "seen")
			write(t, filepath.Join(sb.dir, "bin", "ansible-playbook"), fmt.Sprintf(
				"#!/bin/sh\necho \"args $*\" >>%[1]s\nfor a; do case $a in @*) stat -c 'mode %%a' \"${a#@}\" >>%[1]s; cat \"${a#@}\" >>%[1]s;; esac; done\nexit %[2]d\n",
				seen, status), 0o755)
			for _, f := range []string{"cloud/instance/user-data.txt", "cloud/instances/i-1/user-data.txt.i", "cloud/instances/i-1/scripts/part-001"} {
				write(t, filepath.Join(sb.dir, f), "user data with "+secret, 0o600)
			}
			b, err := provisionBundle(recipe, "", []config.Step{{Ansible: &config.AnsibleStep{Playbook: "site.yml", ExtraVars: map[string]string{"db_password": secret}}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			script := inline(t, b, buildMarker)
			if bytes.Contains(script, []byte(secret)) {
				t.Error("the secret is in the script's text")
			}
			console, exit := sb.run(t, script)
			if (exit == 0) != (status == 0) {
				t.Fatalf("exit %d for ansible status %d; console:\n%s", exit, status, console)
			}
			got, _ := os.ReadFile(seen)
			lines := strings.SplitN(string(got), "\n", 3)
			if len(lines) < 3 || strings.Contains(lines[0], secret) || lines[1] != "mode 600" || !strings.Contains(lines[2], secret) {
				t.Errorf("ansible saw:\n%s", got)
			}
			if _, err := os.Stat(filepath.Join(sb.work(), "vars", "ansible-1.json")); !os.IsNotExist(err) {
				t.Errorf("vars file left: %v", err)
			}
			var cloudLeft []string
			filepath.WalkDir(filepath.Join(sb.dir, "cloud"), func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					cloudLeft = append(cloudLeft, p)
				}
				return nil
			})
			if status == 0 && len(cloudLeft) > 0 {
				t.Errorf("cloud-init's copies left in the image: %v", cloudLeft)
			}
		})
	}
}
