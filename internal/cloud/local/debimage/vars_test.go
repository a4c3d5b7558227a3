package debimage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/config"
)

const secret = "s3cret-db-pw"

// TestAnsibleVarsNeverOnACommandLine: extra vars reach ansible in a file
// only the build can read, removed when the step ends, and appear in no
// hook command (which mmdebstrap echoes and the process list shows).
func TestAnsibleVarsNeverOnACommandLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "play.yml"), []byte("- hosts: all\n"), 0o644)
	steps, err := parseSteps(dir, []config.Step{{Ansible: &config.AnsibleStep{Playbook: "play.yml",
		ExtraVars: map[string]string{"db_password": secret, "greeting": "it's me"}}}})
	if err != nil {
		t.Fatal(err)
	}
	st := steps[0]
	hookDir := t.TempDir()
	if err := st.writeVars(hookDir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(st.varsFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("vars file %s: %v, mode %v; want 0600", st.varsFile, err, fi.Mode())
	}
	hooks := st.hooks("NONCE")
	for _, h := range hooks {
		if strings.Contains(h, secret) {
			t.Fatalf("a hook command holds the secret: %s", h)
		}
	}
	// Run the hooks as mmdebstrap would, with a stand-in
	// ansible-playbook that records its arguments and the vars it was
	// given, and what it could see of the vars file.
	if len(hooks) != 3 || !strings.HasPrefix(hooks[1], "upload ") {
		t.Fatalf("hooks %q", hooks)
	}
	root := t.TempDir()
	inside := filepath.Join(root, st.stage(), "vars.json")
	os.MkdirAll(filepath.Dir(inside), 0o755)
	bin := t.TempDir()
	seen := filepath.Join(t.TempDir(), "seen")
	writeExec(filepath.Join(bin, "ansible-playbook"), "#!/bin/sh\necho \"args $*\" >>"+seen+
		"\nfor a; do case $a in @*) stat -c 'mode %a' \"${a#@}\" >>"+seen+"; cat \"${a#@}\" >>"+seen+"; echo >>"+seen+";; esac; done\necho \"db password is "+secret+"\"\n")
	sh := func(hook string) {
		t.Helper()
		cmd := exec.Command("sh", "-c", hook, "hook", root)
		cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hook %s: %v\n%s", hook, err, out)
		}
	}
	sh(hooks[0])
	// upload: mmdebstrap's "cat > FILE" inside, which keeps the mode.
	data, _ := os.ReadFile(st.varsFile)
	f, err := os.OpenFile(inside, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data)
	f.Close()
	sh(hooks[2])
	got, _ := os.ReadFile(seen)
	if !strings.Contains(string(got), `"db_password":"`+secret+`"`) || !strings.Contains(string(got), `"greeting":"it's me"`) {
		t.Errorf("ansible did not get the vars:\n%s", got)
	}
	lines := strings.SplitN(string(got), "\n", 3)
	if strings.Contains(lines[0], secret) || !strings.Contains(lines[0], "-e @"+inside) || lines[1] != "mode 600" {
		t.Errorf("ansible saw:\n%s", got)
	}
	if _, err := os.Stat(inside); !os.IsNotExist(err) {
		t.Errorf("vars file left in the chroot after the step: %v", err)
	}
}

// TestLineWriterRedacts: a secret a playbook prints reaches neither the
// provisioning log nor the lines kept for progress and errors, even when
// it arrives in pieces.
func TestLineWriterRedacts(t *testing.T) {
	var log bytes.Buffer
	var lines []string
	w := &lineWriter{log: &log, redact: config.Redactor([]string{secret}), fn: func(l string) { lines = append(lines, l) }}
	for _, chunk := range []string{"TASK [debug]\nok: db password is s3cr", "et-db-pw\r\n", "last ", secret} {
		w.Write([]byte(chunk))
	}
	w.Close()
	all := log.String() + strings.Join(lines, "\n")
	if strings.Contains(all, secret) || strings.Contains(all, "s3cr") {
		t.Fatalf("secret in the output:\nlog %q\nlines %q", log.String(), lines)
	}
	if len(lines) != 3 || lines[1] != "ok: db password is "+config.Redacted || !strings.Contains(log.String(), "TASK [debug]\n") {
		t.Errorf("log %q, lines %q", log.String(), lines)
	}
}
