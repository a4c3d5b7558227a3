package config

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{File: "kiln.yaml", Line: 7, Col: 3, Field: "use_cases.ci.arch", Msg: "unknown field"}, "kiln.yaml:7:3: use_cases.ci.arch: unknown field"},
		{Error{File: "kiln.yaml", Field: "project", Msg: "missing"}, "kiln.yaml: project: missing"},
		{Error{File: "kiln.yaml", Line: 2, Msg: "invalid YAML"}, "kiln.yaml:2: invalid YAML"},
		{Error{File: "kiln.yaml", Msg: "file is empty"}, "kiln.yaml: file is empty"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestErrors(t *testing.T) {
	es := Errors{
		{File: "k.yaml", Line: 1, Col: 1, Field: "a", Msg: "one"},
		{File: "k.yaml", Msg: "two", err: fs.ErrNotExist},
	}
	if got, want := es.Error(), "k.yaml:1:1: a: one\nk.yaml: two"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("load: %w", error(es))
	var back Errors
	if !errors.As(wrapped, &back) || len(back) != 2 {
		t.Errorf("errors.As through a wrap failed: %v", back)
	}
	var one *Error
	if !errors.As(wrapped, &one) || one.Msg != "one" {
		t.Errorf("errors.As(*Error) = %v", one)
	}
	if !errors.Is(wrapped, fs.ErrNotExist) {
		t.Error("errors.Is does not reach an Error's cause")
	}
}

func TestErrorsSorted(t *testing.T) {
	es := Errors{
		{File: "k", Line: 3, Col: 1, Msg: "c"},
		{File: "k", Line: 1, Col: 5, Msg: "b"},
		{File: "k", Msg: "file"},
		{File: "k", Line: 1, Col: 2, Msg: "a"},
		{File: "k", Line: 3, Col: 1, Msg: "c"},
		{File: "k", Line: 3, Col: 1, Msg: "c2"},
	}
	var got []string
	for _, e := range es.sorted() {
		got = append(got, e.Msg)
	}
	if fmt.Sprint(got) != "[file a b c c2]" {
		t.Errorf("sorted = %v", got)
	}
}
