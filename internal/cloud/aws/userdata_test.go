package aws

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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

func (s *sandbox) run(t *testing.T, script []byte) (console string, exit int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-s")
	cmd.Stdin = bytes.NewReader(script)
	cmd.Env = append(os.Environ(), "PATH="+s.path, "KILN_WORK="+filepath.Join(s.dir, "work"),
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

func TestProvisionScriptRuns(t *testing.T) {
	sb := newSandbox(t)
	recipe := filepath.Join(sb.dir, "recipe")
	dest := filepath.Join(sb.dir, "image")
	steps := filepath.Join(dest, "steps.log")
	write(t, steps, "", 0o644)
	write(t, filepath.Join(recipe, "one.sh"), "#!/bin/sh\necho one >>"+steps+"\n", 0o644)
	write(t, filepath.Join(recipe, "two.sh"), "#!/bin/sh\necho \"two $(cat "+dest+"/etc/motd)\" >>"+steps+"\n", 0o644)
	write(t, filepath.Join(recipe, "files/motd"), "it's \"quoted\" $HOME\n", 0o644)
	write(t, filepath.Join(recipe, "tree/a.txt"), "A", 0o644)
	write(t, filepath.Join(recipe, "tree/sub/b.txt"), "B", 0o600)
	write(t, filepath.Join(recipe, "site.yml"), "- hosts: all\n  tasks: []\n", 0o644)
	// A stand-in for ansible-playbook records how it was called.
	write(t, filepath.Join(sb.dir, "bin", "ansible-playbook"),
		"#!/bin/sh\necho \"ansible $*\" >>"+steps+"\nfor a; do case $a in @*) cat \"${a#@}\" >>"+steps+";; *.yml) cat \"$a\" >>"+steps+";; esac; done\n", 0o755)
	owner := fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())

	script, err := provisionScript(recipe, []config.Step{
		{Name: "first", Shell: "one.sh"},
		{File: &config.FileStep{Source: "files/motd", Destination: dest + "/etc/motd", Mode: "0640", Owner: owner}},
		{Shell: "two.sh"},
		{File: &config.FileStep{Source: "tree", Destination: dest + "/opt/tree", Owner: owner}},
		{Name: "play", Ansible: &config.AnsibleStep{Playbook: "site.yml", ExtraVars: map[string]string{"greeting": "it's me"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(script, []byte("KILN-BUILD-RESULT")) {
		t.Error("the script contains the marker text itself; a console echo of the script would fake a result")
	}
	console, exit := sb.run(t, script)
	if exit != 0 {
		t.Fatalf("exit %d, console:\n%s", exit, console)
	}
	if mk := findMarker(console, buildMarker); !mk.found || !mk.passed {
		t.Errorf("console %q: want a PASS build marker", console)
	}
	got, _ := os.ReadFile(steps)
	wantSteps := "one\ntwo it's \"quoted\" $HOME\nansible -i localhost, -c local -e @vars-5.json play-5.yml\n"
	if !strings.HasPrefix(string(got), wantSteps) {
		t.Errorf("steps ran as\n%s\nwant prefix\n%s", got, wantSteps)
	}
	for _, want := range []string{`{"greeting":"it's me"}`, "- hosts: all"} {
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
	if _, err := os.Stat(filepath.Join(sb.dir, "work")); !os.IsNotExist(err) {
		t.Errorf("work directory left behind: %v", err)
	}
}

func TestProvisionScriptStopsAtFailure(t *testing.T) {
	sb := newSandbox(t)
	recipe := filepath.Join(sb.dir, "recipe")
	log := filepath.Join(sb.dir, "steps.log")
	write(t, filepath.Join(recipe, "ok.sh"), "#!/bin/sh\necho ok >>"+log+"\n", 0o644)
	write(t, filepath.Join(recipe, "bad.sh"), "#!/bin/sh\nexit 7\n", 0o644)
	write(t, filepath.Join(recipe, "never.sh"), "#!/bin/sh\necho never >>"+log+"\n", 0o644)
	script, err := provisionScript(recipe, []config.Step{{Shell: "ok.sh"}, {Name: "breaks", Shell: "bad.sh"}, {Shell: "never.sh"}})
	if err != nil {
		t.Fatal(err)
	}
	console, exit := sb.run(t, script)
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

func TestProvisionScriptBadInput(t *testing.T) {
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
			_, err := provisionScript(dir, tt.steps)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestTestScript(t *testing.T) {
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
			script, err := testScript(filepath.Join(sb.dir, "recipe"), paths)
			if err != nil {
				t.Fatal(err)
			}
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

func TestEncodeUserData(t *testing.T) {
	small := []byte("#!/bin/sh\necho hi\n")
	got, err := encodeUserData(small)
	if err != nil {
		t.Fatal(err)
	}
	if dec, _ := base64.StdEncoding.DecodeString(got); !bytes.Equal(dec, small) {
		t.Errorf("small script not passed as it is: %q", dec)
	}

	// Over 16 KiB but compressible: gzipped, and it unpacks to the script.
	big := bytes.Repeat([]byte("echo the same line again\n"), 2000)
	got, err = encodeUserData(big)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(got)
	if len(raw) > maxUserData {
		t.Errorf("encoded user data is %d bytes, over the limit", len(raw))
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("large script not gzipped: %v", err)
	}
	if back, _ := io.ReadAll(zr); !bytes.Equal(back, big) {
		t.Error("gzipped user data does not unpack to the script")
	}

	// Incompressible and too big: a clear error.
	noise := make([]byte, 40<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	noise = []byte(base64.StdEncoding.EncodeToString(noise))
	if _, err := encodeUserData(noise); err == nil || !strings.Contains(err.Error(), "EC2 allows 16384") {
		t.Errorf("error %v, want one about the 16 KiB limit", err)
	}
}

// TestTestScriptStaysInTheProject: a test path that leads out of the
// project would put a host file into the test instance's user data.
func TestTestScriptStaysInTheProject(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "tests/ok.sh"), "#!/bin/sh\n", 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "tests/link.sh"))
	for _, p := range []string{"/etc/passwd", "../../../../../etc/passwd", "tests/link.sh"} {
		if _, err := testScript(dir, []string{"tests/ok.sh", p}); err == nil || !strings.Contains(err.Error(), "leads outside the project") {
			t.Errorf("tests [%s]: %v", p, err)
		}
	}
}

// TestProvisionScriptKeepsVarsSecret: extra vars go to ansible in a file
// only root reads, removed when ansible ends (also when it fails), never
// on its command line; cloud-init's copy of the user data is removed
// before the image is made.
func TestProvisionScriptKeepsVarsSecret(t *testing.T) {
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
			script, err := provisionScript(recipe, []config.Step{{Ansible: &config.AnsibleStep{Playbook: "site.yml", ExtraVars: map[string]string{"db_password": secret}}}})
			if err != nil {
				t.Fatal(err)
			}
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
			if _, err := os.Stat(filepath.Join(sb.dir, "work", "vars-1.json")); !os.IsNotExist(err) {
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
