package manifest

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is one problem found in a manifest.
type Error struct {
	File string // file name (or REF:PATH) as given by the caller
	Path string // where in the manifest, e.g. aws-linux-ephemeral.us-east-1.id; "" for the whole file
	Msg  string // what is wrong and what is allowed
	Line int    // 1-based; 0 when the position is unknown
	Col  int    // 1-based byte column; 0 when the position is unknown
}

// Error returns "FILE:LINE:COL: PATH: MSG", leaving out the position when it
// is unknown and the path when the problem concerns the whole file.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Col))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one manifest, in file order (Decode) or
// in use case, region, field order (Validate). Functions of this package
// return a non-empty Errors or nil, never an empty one.
type Errors []*Error

// Error returns one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual *Error values.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// maxErrors bounds how many problems one file reports; past that the list
// stops helping and only costs memory.
const maxErrors = 100

// joinPath builds a dotted path from keys, quoting any key that would make
// the path ambiguous or unreadable (empty, or holding dots, quotes, spaces or
// control characters).
func joinPath(keys ...string) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		if needsQuote(k) {
			k = strconv.Quote(k)
		}
		parts[i] = k
	}
	return strings.Join(parts, ".")
}

func needsQuote(k string) bool {
	if k == "" {
		return true
	}
	for _, r := range k {
		if r == '.' || r == '"' || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}

// quoteShort quotes s for a message, cutting it short so that a huge value
// cannot flood the output.
func quoteShort(s string) string {
	return strconv.Quote(shorten(s))
}

func shorten(s string) string {
	const max = 40
	if len(s) <= max {
		return s
	}
	// Cut on a rune boundary.
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
