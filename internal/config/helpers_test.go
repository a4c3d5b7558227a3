package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// newProject makes a project directory holding the files the test configs
// refer to: scripts t.sh and s.sh, a file f.txt, a directory dir and a
// playbook p.yml.
func newProject(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"t.sh", "s.sh", "f.txt", "p.yml", "dir/x"} {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// errorStrings returns the messages of err, which must be an Errors.
func errorStrings(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, not Errors: %v", err, err)
	}
	if len(es) == 0 {
		t.Fatal("empty Errors")
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Error())
	}
	return out
}

// wantErrors parses doc in dir and checks that the errors are exactly want,
// in order; "DIR" in want stands for dir.
func wantErrors(t *testing.T, doc, dir string, want []string) {
	t.Helper()
	c, err := Parse("kiln.yaml", []byte(doc), dir)
	got := errorStrings(t, err)
	want = slices.Clone(want)
	for i := range want {
		want[i] = strings.ReplaceAll(want[i], "DIR", dir)
	}
	if !slices.Equal(got, want) {
		t.Errorf("document:\n%s\ngot errors:\n  %s\nwant:\n  %s", doc, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if (c == nil) == (err == nil) {
		t.Errorf("Parse returned config %v and error %v; want exactly one", c != nil, err)
	}
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }
