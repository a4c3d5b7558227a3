package qemuboot

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The archive unpacks with the tar the guest has into what the agent reads.
func TestPayload(t *testing.T) {
	dir := t.TempDir()
	var tests []string
	for _, name := range []string{"b-second.sh", "a-first.sh"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\necho "+name+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, p)
	}
	archive := filepath.Join(dir, "tests.tar")
	if err := writePayload(archive, tests, 2500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("tar", "-x", "-f", archive, "-C", out).CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, b)
	}
	want := map[string]string{
		"order":             "b-second.sh\na-first.sh\n", // the given order, not sorted
		"timeout":           "3\n",                       // whole seconds, rounded up
		"tests/b-second.sh": "#!/bin/sh\necho b-second.sh\n",
		"tests/a-first.sh":  "#!/bin/sh\necho a-first.sh\n",
	}
	for name, content := range want {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if string(b) != content {
			t.Errorf("%s holds %q, want %q", name, b, content)
		}
	}
	fi, err := os.Stat(filepath.Join(out, "tests", "a-first.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("test unpacked with mode %v, want executable", fi.Mode())
	}
}
