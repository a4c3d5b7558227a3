package debimage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/redact"
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
	varDir, err := writeVarFiles(t.TempDir(), nil, steps)
	if err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(varDir, filepath.Base(chrootExtraVars(st.n)))
	if fi, err := os.Stat(host); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("vars file %s: %v, mode %v; want 0600", host, err, fi)
	}
	if fi, err := os.Stat(varDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("vars directory %s: %v, mode %v; want 0700", varDir, err, fi)
	}
	hooks := st.hooks("NONCE", hookVars{extra: true})
	for _, h := range hooks {
		if strings.Contains(h, secret) {
			t.Fatalf("a hook command holds the secret: %s", h)
		}
	}
	// Run the hook as mmdebstrap would, after the copy-in of the vars
	// directory (which keeps modes), with a stand-in ansible-playbook that
	// records its arguments and the vars it was given, and what it could
	// see of the vars file.
	if len(hooks) != 1 {
		t.Fatalf("hooks %q", hooks)
	}
	root := t.TempDir()
	inside := filepath.Join(root, chrootExtraVars(st.n))
	os.MkdirAll(filepath.Dir(inside), 0o700)
	data, _ := os.ReadFile(host)
	if err := os.WriteFile(inside, data, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	seen := filepath.Join(t.TempDir(), "seen")
	writeExec(filepath.Join(bin, "ansible-playbook"), "#!/bin/sh\necho \"args $*\" >>"+seen+
		"\nfor a; do case $a in @*) stat -c 'mode %a' \"${a#@}\" >>"+seen+"; cat \"${a#@}\" >>"+seen+"; echo >>"+seen+";; esac; done\necho \"db password is "+secret+"\"\n")
	cmd := exec.Command("sh", "-c", hooks[0], "hook", root)
	cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hook %s: %v\n%s", hooks[0], err, out)
	}
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
	w := &lineWriter{log: &log, secrets: secretsOf(secret), fn: func(l string) { lines = append(lines, l) }}
	for _, chunk := range []string{"TASK [debug]\nok: db password is s3cr", "et-db-pw\r\n", "last ", secret} {
		w.Write([]byte(chunk))
	}
	w.Close()
	all := log.String() + strings.Join(lines, "\n")
	if strings.Contains(all, secret) || strings.Contains(all, "s3cr") {
		t.Fatalf("secret in the output:\nlog %q\nlines %q", log.String(), lines)
	}
	if len(lines) != 3 || lines[1] != "ok: db password is "+redact.Mask || !strings.Contains(log.String(), "TASK [debug]\n") {
		t.Errorf("log %q, lines %q", log.String(), lines)
	}
}

// TestBuildSecrets: the provisioning log masks the steps' extra vars and
// the secret variables, not the plain ones.
func TestBuildSecrets(t *testing.T) {
	b := &builder{s: Spec{
		Steps: []config.Step{{Ansible: &config.AnsibleStep{Playbook: "p.yml", ExtraVars: map[string]string{"db": "db-password"}}}},
		Vars:  []cloud.Var{{Name: "edition", Value: "community"}, {Name: "token", Value: "registry-token-value", Secret: true}},
	}}
	got := strings.Join(b.secrets(), ",")
	if got != "registry-token-value,db-password" {
		t.Errorf("secrets %q", got)
	}
	line := secretsOf(b.secrets()...).String("login registry-token-value community db-password")
	if line != "login "+redact.Mask+" community "+redact.Mask {
		t.Errorf("masked line %q", line)
	}
}

func secretsOf(values ...string) *redact.Secrets {
	s := &redact.Secrets{}
	s.Add(values...)
	return s
}
