package redact

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestString(t *testing.T) {
	var s Secrets
	if got := s.String("nothing to hide"); got != "nothing to hide" {
		t.Errorf("empty set changed text: %q", got)
	}
	s.Add("hunter2-hunter2", "", "line-one-xx\nshort\nline-three-yy", `quote"d-secret`)
	tests := []struct{ in, want string }{
		{"token=hunter2-hunter2.", "token=[REDACTED]."},
		{"twice hunter2-hunter2 hunter2-hunter2", "twice [REDACTED] [REDACTED]"},
		{"part hunter2-hunte", "part hunter2-hunte"},
		{"whole: line-one-xx\nshort\nline-three-yy", "whole: [REDACTED]"},
		{"by line: line-three-yy", "by line: [REDACTED]"},
		{"short stays", "short stays"},
		{`{"v":"quote\"d-secret"}`, `{"v":"[REDACTED]"}`},
	}
	for _, tt := range tests {
		if got := s.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	err := s.Error(fmt.Errorf("step failed: %w", errors.New("echo hunter2-hunter2")))
	if err.Error() != "step failed: echo [REDACTED]" || errors.Unwrap(err) != nil {
		t.Errorf("Error: %q (unwraps to %v)", err, errors.Unwrap(err))
	}
	plain := errors.New("fine")
	if s.Error(plain) != plain {
		t.Error("an error with no secret was replaced")
	}
}

// Writes split anywhere: across a secret, inside it, one byte at a time.
func TestWriterSplits(t *testing.T) {
	var s Secrets
	s.Add("s3cr3t-value!", "another-one-1")
	text := "a s3cr3t-value! b s3cr3t-valu c another-one-1s3cr3t-value! end s3cr"
	want := "a [REDACTED] b s3cr3t-valu c [REDACTED][REDACTED] end s3cr"
	for _, chunk := range []int{1, 2, 3, 5, 7, 13, len(text)} {
		var out bytes.Buffer
		w := NewWriter(&out, &s)
		for i := 0; i < len(text); i += chunk {
			end := min(i+chunk, len(text))
			if n, err := w.Write([]byte(text[i:end])); err != nil || n != end-i {
				t.Fatalf("chunk %d: Write = %d, %v", chunk, n, err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("chunk %d: %q, want %q", chunk, out.String(), want)
		}
	}
}

func TestWriterConcurrentAndLate(t *testing.T) {
	var s Secrets
	var out bytes.Buffer
	w := NewWriter(&out, &s)
	fmt.Fprint(w, "before: late-secret-1\n") // not known yet: passes
	s.Add("late-secret-1")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { fmt.Fprintf(w, "line %d late-secret-1\n", i) })
	}
	wg.Wait()
	w.Flush()
	if n := strings.Count(out.String(), "late-secret-1"); n != 1 {
		t.Errorf("secret appears %d times, want only the line written before it was known:\n%s", n, out.String())
	}
	if n := strings.Count(out.String(), "[REDACTED]"); n != 20 {
		t.Errorf("%d masks, want 20", n)
	}
	if w.Unwrap() != &out {
		t.Error("Unwrap does not return the underlying writer")
	}
}

func TestFile(t *testing.T) {
	var s Secrets
	s.Add("console-secret")
	dir := t.TempDir()
	p := filepath.Join(dir, "console.log")
	os.WriteFile(p, []byte("boot\nprinting console-secret\n"), 0o644)
	if err := s.File(p); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(p)
	if string(data) != "boot\nprinting [REDACTED]\n" {
		t.Errorf("file: %q", data)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}
