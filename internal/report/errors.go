package report

import (
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Error is what a command prints on stderr with -o json when it fails (exit
// 2) or ends with findings it explains in words (exit 1): the message a
// person would read, and each problem of an input file on its own.
type Error struct {
	Schema   string    `json:"schema"`
	ExitCode int       `json:"exit_code"`
	Message  string    `json:"message"`
	Problems []Problem `json:"problems"`
}

// Problem is one problem in an input file: kiln.yaml or a manifest.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"` // 1-based; absent when unknown
	Col     int    `json:"col,omitempty"`  // 1-based; absent when unknown
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// NewError describes err, which ends the command with code.
func NewError(err error, code int) Error {
	e := Error{Schema: SchemaError, ExitCode: code, Message: err.Error(), Problems: []Problem{}}
	walk(err, func(err error) {
		switch p := err.(type) {
		case *config.Error:
			e.Problems = append(e.Problems, Problem{File: p.File, Line: p.Line, Col: p.Col, Field: p.Field, Message: p.Msg})
		case *manifest.Error:
			e.Problems = append(e.Problems, Problem{File: p.File, Line: p.Line, Col: p.Col, Field: p.Path, Message: p.Msg})
		}
	})
	return e
}

// walk calls fn for err and every error it wraps, depth first, stopping
// below the input-file problems (their causes are not problems of their
// own).
func walk(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case *config.Error, *manifest.Error:
		return
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), fn)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, fn)
		}
	}
}
