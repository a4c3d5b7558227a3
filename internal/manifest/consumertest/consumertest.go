// Package consumertest runs the programs that read and write kiln's
// manifests on the consumers' side — Terraform, Python's json module — so
// that tests check kiln's files against the real consumers rather than
// against kiln's idea of them.
package consumertest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// PythonDump loads data with Python's json module and writes it back with
// json.dump(..., indent=indent) (indent < 0: no indent argument, one line),
// as a consumer's Python tooling does. For a file already in that layout
// the bytes come back unchanged.
func PythonDump(t testing.TB, data []byte, indent int) []byte {
	t.Helper()
	py := lookPath(t, "python3")
	arg := "None"
	if indent >= 0 {
		arg = strconv.Itoa(indent)
	}
	cmd := exec.Command(py, "-c", "import json, sys; json.dump(json.load(sys.stdin), sys.stdout, indent="+arg+")")
	cmd.Stdin = bytes.NewReader(data)
	return run(t, cmd)
}

// TerraformOutputs applies a Terraform configuration made of outputs only
// (no providers, nothing leaves the machine) in dir and returns each
// named output as `terraform output -raw` prints it.
func TerraformOutputs(t testing.TB, dir, config string, names ...string) map[string]string {
	t.Helper()
	tf := lookPath(t, "terraform")
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_DATA_DIR="+filepath.Join(dir, ".terraform"))
	for _, args := range [][]string{
		{"init", "-input=false", "-no-color"},
		{"apply", "-auto-approve", "-input=false", "-no-color"},
	} {
		cmd := exec.Command(tf, args...)
		cmd.Dir, cmd.Env = dir, env
		run(t, cmd)
	}
	out := map[string]string{}
	for _, n := range names {
		cmd := exec.Command(tf, "output", "-no-color", "-raw", n)
		cmd.Dir, cmd.Env = dir, env
		out[n] = string(run(t, cmd))
	}
	return out
}

// TerraformPlan runs `terraform plan` on config in dir and returns its
// output: a plan fails on an expression a manifest cannot satisfy (a key
// or region missing, a field of the wrong type).
func TerraformPlan(t testing.TB, dir, config string) string {
	t.Helper()
	tf := lookPath(t, "terraform")
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1", "TF_DATA_DIR="+filepath.Join(dir, ".terraform"))
	cmd := exec.Command(tf, "init", "-input=false", "-no-color")
	cmd.Dir, cmd.Env = dir, env
	run(t, cmd)
	cmd = exec.Command(tf, "plan", "-input=false", "-no-color")
	cmd.Dir, cmd.Env = dir, env
	return string(run(t, cmd))
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("this test runs the consumer's %s, which is not installed: %v", name, err)
	}
	return p
}

func run(t testing.TB, cmd *exec.Cmd) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s%s", strings.Join(cmd.Args, " "), err, out, stderr.String())
	}
	return out
}
