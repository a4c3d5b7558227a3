package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a config file. Line and Col are 1-based; zero
// means the position is unknown. Field is the dotted path of the field, such
// as "use_cases.debian-sandbox.provision[1].file.mode", or empty when the
// problem concerns the whole file.
type Error struct {
	File      string
	Line, Col int
	Field     string
	Msg       string

	err error // the underlying cause, if any, for errors.Is
}

// Error formats e as "FILE:LINE:COL: FIELD: MSG", leaving out the parts that
// are unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the cause of e, such as fs.ErrNotExist, or nil.
func (e *Error) Unwrap() error { return e.err }

// Errors is every problem found in a config file, in the order they appear
// in it. Load and Parse return it, never an empty one.
type Errors []*Error

// Error joins the errors' messages with newlines.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap gives errors.Is and errors.As access to each error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sorted returns es ordered by position, file-level errors (no line) first,
// with exact repeats removed.
func (es Errors) sorted() Errors {
	out := slices.Clone(es)
	slices.SortStableFunc(out, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return slices.CompactFunc(out, func(a, b *Error) bool {
		return a.Line == b.Line && a.Col == b.Col && a.Field == b.Field && a.Msg == b.Msg
	})
}

// ErrUnknown is matched (errors.Is) by the errors of Config.UseCase and
// Config.ManifestPath for names the config does not define.
var ErrUnknown = errors.New("not defined in the config")
