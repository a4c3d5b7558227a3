package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds the nesting of values skipped after a type error. Valid
// manifests nest three deep.
const maxDepth = 64

// Decode parses data as a manifest, strictly: the top level and every use
// case must be objects, every region an object with exactly the five entry
// fields of the right JSON types; duplicate keys, null, trailing data,
// invalid UTF-8 and a use case without regions are errors. name is used in
// messages only. The error, if any, is Errors with every problem found
// (a JSON syntax error ends the search).
//
// Decode checks shape only; Validate checks the values.
func Decode(name string, data []byte) (Manifest, error) {
	d := newDecoder(name, data)
	m := d.decode()
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return m, nil
}

// decoder walks the token stream of one manifest, collecting errors and the
// position of every key and value.
type decoder struct {
	name  string
	data  []byte
	dec   *json.Decoder
	lines []int // offsets where lines start; built on first use
	errs  Errors
	pos   map[string]int // path -> offset of its key (use case, region) or value (field)
	stop  bool           // a syntax error or too many errors end the walk
}

func newDecoder(name string, data []byte) *decoder {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are always wrong here; keep their text for messages
	return &decoder{name: name, data: data, dec: dec, pos: make(map[string]int)}
}

// position turns a byte offset into a 1-based line and byte column.
func (d *decoder) position(off int) (line, col int) {
	if d.lines == nil {
		d.lines = []int{0}
		for i, b := range d.data {
			if b == '\n' {
				d.lines = append(d.lines, i+1)
			}
		}
	}
	i := sort.Search(len(d.lines), func(i int) bool { return d.lines[i] > off }) - 1
	return i + 1, off - d.lines[i] + 1
}

// errorAt records a problem at byte offset off (negative: no position).
func (d *decoder) errorAt(off int, path, format string, args ...any) {
	if d.stop {
		return
	}
	if len(d.errs) == maxErrors {
		d.errs = append(d.errs, &Error{File: d.name, Msg: fmt.Sprintf("more than %d errors; stopping", maxErrors)})
		d.stop = true
		return
	}
	e := &Error{File: d.name, Path: path, Msg: fmt.Sprintf(format, args...)}
	if off >= 0 {
		e.Line, e.Col = d.position(off)
	}
	d.errs = append(d.errs, e)
}

// isSpace reports JSON whitespace, which is narrower than unicode.IsSpace.
func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// next returns the next token and the offset where it starts. ok is false
// when the walk must end (syntax error, recorded, or an earlier stop).
func (d *decoder) next() (tok json.Token, start int, ok bool) {
	if d.stop {
		return nil, 0, false
	}
	// InputOffset is the end of the previous token; the next one starts
	// after whitespace and the ',' or ':' that Token consumes silently.
	start = int(d.dec.InputOffset())
	for start < len(d.data) && (isSpace(d.data[start]) || d.data[start] == ',' || d.data[start] == ':') {
		start++
	}
	tok, err := d.dec.Token()
	if err != nil {
		d.syntaxError(err, start)
		d.stop = true
		return nil, start, false
	}
	return tok, start, true
}

// syntaxError records a JSON syntax error met while reading the token at
// start.
func (d *decoder) syntaxError(err error, start int) {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		d.errorAt(len(d.data), "", "unexpected end of file")
		return
	}
	// The Decoder's offsets are sometimes relative to the current value;
	// the whole-input scanner behind Unmarshal counts from the start of
	// the file and finds the same first bad byte, since all before it was
	// read without error.
	var se *json.SyntaxError
	if errors.As(json.Unmarshal(d.data, new(json.RawMessage)), &se) {
		d.errorAt(max(int(se.Offset)-1, 0), "", "invalid JSON: %s", se.Error())
		return
	}
	d.errorAt(start, "", "invalid JSON: %v", err)
}

// describe names a JSON token for messages: its kind and, for scalars, a
// shortened rendering of it.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case bool:
		if v {
			return "boolean true"
		}
		return "boolean false"
	case string:
		return "string " + quoteShort(v)
	case json.Number:
		return "number " + shorten(v.String())
	case json.Delim:
		if v == '[' {
			return "array"
		}
		return "object"
	}
	return fmt.Sprintf("%T", tok)
}

// skip consumes the rest of a value whose first token was tok.
func (d *decoder) skip(tok json.Token, start int) bool {
	if tok != json.Delim('{') && tok != json.Delim('[') {
		return true
	}
	for depth := 1; depth > 0; {
		tok, _, ok := d.next()
		if !ok {
			return false
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			if depth > maxDepth {
				d.errorAt(start, "", "value nested more than %d levels deep", maxDepth)
				d.stop = true
				return false
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
	return true
}

// key reads an object key under parent, reporting duplicates. The Decoder
// guarantees keys are strings.
func (d *decoder) key(seen map[string]int, parent ...string) (key, path string, start int, ok bool) {
	tok, start, ok := d.next()
	if !ok {
		return "", "", 0, false
	}
	key, _ = tok.(string)
	path = joinPath(append(parent, key)...)
	if first, dup := seen[key]; dup {
		line, col := d.position(first)
		d.errorAt(start, path, "duplicate key (first at line %d, column %d); JSON readers disagree on which one wins", line, col)
	} else {
		seen[key] = start
	}
	return key, path, start, true
}

// decode walks the whole input.
func (d *decoder) decode() Manifest {
	if !d.precheck() {
		return nil
	}
	tok, start, ok := d.next()
	if !ok {
		return nil
	}
	if tok != json.Delim('{') {
		d.errorAt(start, "", "the top level must be an object of use cases, found %s", describe(tok))
		return nil
	}
	m := Manifest{}
	seen := make(map[string]int)
	for d.dec.More() {
		uc, path, kstart, ok := d.key(seen)
		if !ok {
			return nil
		}
		d.pos[path] = kstart
		regions, ok := d.useCase(uc)
		if !ok {
			return nil
		}
		if regions != nil {
			m[uc] = regions
		}
	}
	if _, _, ok := d.next(); !ok { // the closing brace
		return nil
	}
	end := int(d.dec.InputOffset())
	for i := end; i < len(d.data); i++ {
		if !isSpace(d.data[i]) {
			d.errorAt(i, "", "unexpected data after the top-level object")
			break
		}
	}
	return m
}

// precheck rejects inputs that are not worth tokenizing, with a clearer
// message than the JSON scanner would give.
func (d *decoder) precheck() bool {
	switch {
	case len(d.data) > MaxSize:
		d.errs = append(d.errs, tooBig(d.name, int64(len(d.data))))
	case len(d.data) == 0:
		d.errorAt(-1, "", "file is empty; an empty manifest is {}")
	case bytes.HasPrefix(d.data, []byte("\xef\xbb\xbf")):
		d.errorAt(0, "", "file starts with a UTF-8 byte order mark, which JSON does not allow; remove it")
	case !utf8.Valid(d.data):
		off := 0
		for off < len(d.data) {
			r, size := utf8.DecodeRune(d.data[off:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			off += size
		}
		d.errorAt(off, "", "file is not valid UTF-8 (byte 0x%02x)", d.data[off])
	case len(bytes.TrimLeft(d.data, " \t\r\n")) == 0:
		d.errorAt(-1, "", "file contains only whitespace; an empty manifest is {}")
	default:
		return true
	}
	return false
}

// useCase reads one use case's object of regions. regions is nil when the
// value was not an object.
func (d *decoder) useCase(uc string) (regions map[string]Entry, ok bool) {
	path := joinPath(uc)
	tok, start, ok := d.next()
	if !ok {
		return nil, false
	}
	if tok != json.Delim('{') {
		d.errorAt(start, path, "must be an object of regions, found %s", describe(tok))
		return nil, d.skip(tok, start)
	}
	regions = make(map[string]Entry)
	seen := make(map[string]int)
	for d.dec.More() {
		region, rpath, kstart, ok := d.key(seen, uc)
		if !ok {
			return nil, false
		}
		d.pos[rpath] = kstart
		e, ok := d.entry(uc, region)
		if !ok {
			return nil, false
		}
		regions[region] = e
	}
	if _, _, ok := d.next(); !ok {
		return nil, false
	}
	if len(regions) == 0 {
		d.errorAt(start, path, "use case has no regions; remove it or add a region")
	}
	return regions, true
}

// fieldList is the allowed fields, for messages.
var fieldList = strings.Join(fieldNames[:], ", ")

// entry reads the entry of useCase in region.
func (d *decoder) entry(useCase, region string) (e Entry, ok bool) {
	path := joinPath(useCase, region)
	tok, start, ok := d.next()
	if !ok {
		return e, false
	}
	if tok != json.Delim('{') {
		d.errorAt(start, path, "must be an object with the fields %s; found %s", fieldList, describe(tok))
		return e, d.skip(tok, start)
	}
	seen := make(map[string]int)
	for d.dec.More() {
		name, fpath, kstart, ok := d.key(seen, useCase, region)
		if !ok {
			return e, false
		}
		tok, vstart, ok := d.next()
		if !ok {
			return e, false
		}
		d.pos[fpath] = vstart
		var dst *string
		switch name {
		case "architecture":
			dst = &e.Architecture
		case "deprecation_time":
			dst = &e.DeprecationTime
		case "id":
			dst = &e.ID
		case "name":
			dst = &e.Name
		case "public":
			if b, isBool := tok.(bool); isBool {
				e.Public = b
			} else {
				d.errorAt(vstart, fpath, "must be a boolean (true or false), found %s", describe(tok))
			}
		default:
			d.errorAt(kstart, fpath, "unknown field %s%s; the fields are %s", quoteShort(name), didYouMean(name), fieldList)
		}
		if dst != nil {
			if s, isString := tok.(string); isString {
				*dst = s
			} else {
				d.errorAt(vstart, fpath, "must be a string, found %s", describe(tok))
			}
		}
		if !d.skip(tok, vstart) {
			return e, false
		}
	}
	if _, _, ok := d.next(); !ok {
		return e, false
	}
	var missing []string
	for _, f := range fieldNames {
		if _, ok := seen[f]; !ok {
			missing = append(missing, `"`+f+`"`)
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		d.errorAt(start, path, "missing field %s", missing[0])
	default:
		d.errorAt(start, path, "missing fields %s", strings.Join(missing, ", "))
	}
	return e, true
}

// didYouMean suggests the field that name differs from only in case.
func didYouMean(name string) string {
	for _, f := range fieldNames {
		if strings.EqualFold(name, f) {
			return fmt.Sprintf(" (did you mean %q?)", f)
		}
	}
	return ""
}
