package debimage

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

var awkward = []string{
	"plain", "with space", "it's", `double "quotes"`, "$HOME", "`date`", "back\\slash",
	"semi;colon", "new\nline", "", "'", "''", "*", "tab\there",
}

// quote's output is one word for sh.
func TestQuoteShell(t *testing.T) {
	for _, s := range awkward {
		out, err := exec.Command("sh", "-c", "printf %s "+quote(s)).Output()
		if err != nil {
			t.Fatalf("sh with %q: %v", quote(s), err)
		}
		if string(out) != s {
			t.Errorf("sh read %q back as %q", s, out)
		}
	}
}

// quote's output is one word for mmdebstrap's special hooks, which split
// with Perl's Text::ParseWords::shellwords.
func TestQuoteShellwords(t *testing.T) {
	for _, s := range awkward {
		if s == "" || strings.ContainsAny(s, "\n\t") {
			continue // not file names mmdebstrap is given
		}
		line := "copy-in " + quote(s) + " /tmp"
		out, err := exec.Command("perl", "-MText::ParseWords", "-e",
			`print join("\0", shellwords($ARGV[0]))`, line).Output()
		if err != nil {
			t.Fatalf("perl: %v", err)
		}
		words := strings.Split(string(out), "\x00")
		if len(words) != 3 || words[1] != s {
			t.Errorf("shellwords split %q into %q", line, words)
		}
	}
}

// A step's hook, run by sh as mmdebstrap runs it, prints the begin and end
// markers around the command and exits with its status; the echo of the
// hook's text holds no marker.
func TestStepHookMarkers(t *testing.T) {
	st := step{n: 3, kind: "shell", src: "/x/s.sh"}
	hooks := st.hooks("NONCE", hookVars{})
	if len(hooks) != 2 || !strings.HasPrefix(hooks[0], "copy-in '/x/s.sh' /tmp/kiln/steps/3") {
		t.Fatalf("hooks %q", hooks)
	}
	hook := hooks[1]
	if strings.Contains(hook, "kiln-step NONCE") {
		t.Errorf("hook text contains the marker itself: %s", hook)
	}
	// Stand in a fake chroot that runs the command without chrooting.
	dir := t.TempDir()
	fake := "#!/bin/sh\nshift\necho \"ran $*\"\nprintf 'no newline'\nexit 5\n"
	if err := writeExec(dir+"/chroot", fake); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", hook, "exec", "/root-of-chroot")
	cmd.Env = append(cmd.Environ(), "PATH="+dir+":/usr/bin:/bin")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Fatalf("hook exit: %v, want status 5", err)
	}
	want := "kiln-step NONCE begin 3\nran /bin/sh -e /tmp/kiln/steps/3/s.sh\nno newlinekiln-step NONCE end 3 5\n"
	if string(out) != want {
		t.Errorf("hook printed\n%q\nwant\n%q", out, want)
	}
}

func TestStepWatcher(t *testing.T) {
	steps := []step{{n: 1, label: "first"}, {n: 2, label: "second"}, {n: 3, label: "third"}}
	type ended struct {
		name string
		err  error
	}
	var log []ended
	w := &stepWatcher{nonce: "N", steps: steps, progress: func(name string) func(error) {
		return func(err error) { log = append(log, ended{name, err}) }
	}}
	lines := []string{
		"I: running --customize-hook in shell: sh -c 'printf '%s %s begin %d\\n' kiln-step N 1; ...'",
		"kiln-step N begin 1", "one", "kiln-step N end 1 0",
		"kiln-step N begin 2",
	}
	for i := 1; i <= 25; i++ {
		lines = append(lines, "out "+string(rune('a'+i)))
	}
	lines = append(lines, "partialkiln-step N end 2 42", "E: setup failed")
	for _, l := range lines {
		w.line(l)
	}
	w.finish(errors.New("mmdebstrap: exit status 1"))
	if w.failed == nil || w.failed.Step != "second" || w.failed.ExitCode != 42 {
		t.Fatalf("failed %+v, want step second with status 42", w.failed)
	}
	tail := strings.Split(w.failed.Tail, "\n")
	if len(tail) != outputTail || tail[len(tail)-1] != "partial" || tail[0] != "out "+string(rune('a'+7)) {
		t.Errorf("tail %q", tail)
	}
	if len(log) != 2 || log[0] != (ended{"first", nil}) || log[1].name != "second" || !errors.Is(log[1].err, w.failed) {
		t.Errorf("progress %+v", log)
	}
}

// A step still running when mmdebstrap stops (killed) ends with an error.
func TestStepWatcherInterrupted(t *testing.T) {
	var got error
	w := &stepWatcher{nonce: "N", steps: []step{{n: 1, label: "only"}}, progress: func(string) func(error) {
		return func(err error) { got = err }
	}}
	w.line("kiln-step N begin 1")
	w.finish(errors.New("signal: terminated"))
	if got == nil || w.failed != nil {
		t.Errorf("progress ended with %v, failed %+v; want an error and no StepError", got, w.failed)
	}
}

func TestLineWriter(t *testing.T) {
	var lines []string
	var log strings.Builder
	w := &lineWriter{log: &log, fn: func(l string) { lines = append(lines, l) }}
	for _, chunk := range []string{"one\ntw", "o\r\n", "progress 10%\rprogress 100%\n", "last"} {
		if n, err := w.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	w.Close()
	want := []string{"one", "two", "progress 100%", "last"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", lines, want)
	}
	if log.String() != "one\ntwo\r\nprogress 10%\rprogress 100%\nlast" {
		t.Errorf("log %q", log.String())
	}
}
