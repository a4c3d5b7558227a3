package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// maxDepth bounds the nesting of values skipped after a type error. Valid
// manifests nest three deep.
const maxDepth = 64

// Decode parses data as a manifest in kiln's own format, strictly: the top
// level and every use case must be objects, every region an object with
// exactly the five entry fields of the right JSON types; duplicate keys,
// null, trailing data, invalid UTF-8 and a use case without regions are
// errors. name is used in messages only. The error, if any, is Errors with
// every problem found (a JSON syntax error ends the search).
//
// Decode checks shape only; Validate checks the values.
func Decode(name string, data []byte) (Manifest, error) {
	return DefaultLayout.Decode(name, data)
}

// Decode parses data as a manifest in the layout's format, as strictly as
// the package-level Decode. Beyond shape, a declared format's fields are
// checked against what they are bound to: a key no use case and
// architecture has, an architecture outside the format's names, a field
// that disagrees with the key it sits under (region, use case, attribute,
// architecture, the key itself), a constant with another value and a time
// not in the field's layout are errors naming what is allowed. The result
// uses kiln's keys, whatever the file's.
func (l *Layout) Decode(name string, data []byte) (Manifest, error) {
	d := newDecoder(name, data, l)
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
	l     *Layout
	// fileKeys maps kiln's key and a region to the key the file uses, so
	// that validation finds positions.
	fileKeys map[[2]string]string
}

func newDecoder(name string, data []byte, l *Layout) *decoder {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are always wrong here; keep their text for messages
	return &decoder{name: name, data: data, dec: dec, pos: make(map[string]int), l: l, fileKeys: map[[2]string]string{}}
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
		d.errorAt(start, "", "the top level must be an object of %s, found %s", d.keyNoun()+"s", describe(tok))
		return nil
	}
	m := Manifest{}
	seen := make(map[string]int)
	for d.dec.More() {
		key, path, kstart, ok := d.key(seen)
		if !ok {
			return nil
		}
		d.pos[path] = kstart
		var targets []Target
		known := true
		if !d.l.Default() {
			targets = d.l.byFile[key]
			if known = len(targets) > 0; !known {
				d.errorAt(kstart, path, "no use case and architecture of this project has this key in format %s (key %s); the keys are %s",
					d.l.f.Name, quoteShort(d.l.f.Key), keyList(d.l.Keys()))
			}
		}
		if !d.useCase(m, key, targets, known) {
			return nil
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

// keyNoun is what the top-level keys are called in messages.
func (d *decoder) keyNoun() string {
	if d.l.Default() {
		return "use case"
	}
	return "key"
}

// keyList lists keys for a message, quoted where needed, at most ten.
func keyList(keys []string) string {
	if len(keys) == 0 {
		return "none (no use case uses this format)"
	}
	const most = 10
	var parts []string
	for i, k := range keys {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(keys)-most))
			break
		}
		parts = append(parts, joinPath(k))
	}
	return strings.Join(parts, ", ")
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

// useCase reads the object of regions under a top-level key, adding its
// entries to m. targets are what the key stands for; known is false for a
// key already reported as unknown (its entries are checked for shape only).
func (d *decoder) useCase(m Manifest, key string, targets []Target, known bool) (ok bool) {
	path := joinPath(key)
	tok, start, ok := d.next()
	if !ok {
		return false
	}
	if tok != json.Delim('{') {
		d.errorAt(start, path, "must be an object of regions, found %s", describe(tok))
		return d.skip(tok, start)
	}
	seen := make(map[string]int)
	n := 0
	for d.dec.More() {
		region, rpath, kstart, ok := d.key(seen, key)
		if !ok {
			return false
		}
		d.pos[rpath] = kstart
		e, t, ok := d.entry(key, region, targets)
		if !ok {
			return false
		}
		n++
		switch {
		case d.l.Default():
			m.Set(key, region, e)
			d.fileKeys[[2]string{key, region}] = key
		case t != nil && known:
			e.Architecture = t.Arch
			m.Set(t.Key, region, e)
			d.fileKeys[[2]string{t.Key, region}] = key
		}
	}
	if _, _, ok := d.next(); !ok {
		return false
	}
	if n == 0 {
		d.errorAt(start, path, "%s has no regions; remove it or add a region", d.keyNoun())
	}
	return true
}

// fieldList is the allowed fields of the layout, for messages.
func (l *Layout) fieldList() string {
	names := make([]string, len(l.f.Fields))
	for i, f := range l.f.Fields {
		names[i] = f.Name
	}
	return strings.Join(names, ", ")
}

// fieldNamed returns the layout's field called name.
func (l *Layout) fieldNamed(name string) (Field, bool) {
	for _, f := range l.f.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// rawValue is a field's value as read, before it is checked against what
// the field is bound to.
type rawValue struct {
	field Field
	s     string
	b     bool
	start int
}

// entry reads the entry under key in region. t is the target the entry
// stands for, nil when the key is unknown or the entry too broken to tell.
func (d *decoder) entry(key, region string, targets []Target) (e Entry, t *Target, ok bool) {
	path := joinPath(key, region)
	tok, start, ok := d.next()
	if !ok {
		return e, nil, false
	}
	if tok != json.Delim('{') {
		d.errorAt(start, path, "must be an object with the fields %s; found %s", d.l.fieldList(), describe(tok))
		return e, nil, d.skip(tok, start)
	}
	seen := make(map[string]int)
	var values []rawValue
	for d.dec.More() {
		name, fpath, kstart, ok := d.key(seen, key, region)
		if !ok {
			return e, nil, false
		}
		tok, vstart, ok := d.next()
		if !ok {
			return e, nil, false
		}
		d.pos[fpath] = vstart
		f, known := d.l.fieldNamed(name)
		switch {
		case !known:
			d.errorAt(kstart, fpath, "unknown field %s%s; the fields are %s", quoteShort(name), d.didYouMean(name), d.l.fieldList())
		case f.Source == SourcePublic:
			if b, isBool := tok.(bool); isBool {
				values = append(values, rawValue{field: f, b: b, start: vstart})
			} else {
				d.errorAt(vstart, fpath, "must be a boolean (true or false), found %s", describe(tok))
			}
		default:
			if s, isString := tok.(string); isString {
				values = append(values, rawValue{field: f, s: s, start: vstart})
			} else {
				d.errorAt(vstart, fpath, "must be a string, found %s", describe(tok))
			}
		}
		if !d.skip(tok, vstart) {
			return e, nil, false
		}
	}
	if _, _, ok := d.next(); !ok {
		return e, nil, false
	}
	var missing []string
	for _, f := range d.l.f.Fields {
		if _, ok := seen[f.Name]; !ok {
			missing = append(missing, `"`+f.Name+`"`)
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		d.errorAt(start, path, "missing field %s", missing[0])
	default:
		d.errorAt(start, path, "missing fields %s", strings.Join(missing, ", "))
	}
	if d.l.Default() {
		for _, v := range values {
			switch v.field.Source {
			case SourceArch:
				e.Architecture = v.s
			case SourceDeprecation:
				e.DeprecationTime = v.s
			case SourceID:
				e.ID = v.s
			case SourceName:
				e.Name = v.s
			case SourcePublic:
				e.Public = v.b
			}
		}
		return e, nil, true
	}
	t = d.target(key, region, targets, values)
	for _, v := range values {
		d.bound(&e, key, region, t, v)
	}
	return e, t, true
}

// target picks the target an entry of a declared format stands for: the
// key's only one, or the one whose architecture the entry's arch field
// names. It reports an arch field that names no architecture of the
// format, or another architecture than the key.
func (d *decoder) target(key, region string, targets []Target, values []rawValue) *Target {
	var arch *rawValue
	for i := range values {
		if values[i].field.Source == SourceArch {
			arch = &values[i]
			break
		}
	}
	var kilnArch string
	if arch != nil {
		var ok bool
		if kilnArch, ok = d.l.kilnArch(arch.s); !ok {
			d.errorAt(arch.start, joinPath(key, region, arch.field.Name), "architecture %s is not one of format %s's names; use %s",
				quoteShort(arch.s), d.l.f.Name, strings.Join(d.l.archNames(), " or "))
			arch = nil
		}
	}
	switch {
	case len(targets) == 0:
		return nil
	case len(targets) == 1:
		t := targets[0]
		if arch != nil && kilnArch != t.Arch {
			want, _ := d.l.archName(t.Arch)
			d.errorAt(arch.start, joinPath(key, region, arch.field.Name), "architecture %s disagrees with its key %s, which stands for %s; want %q",
				quoteShort(arch.s), joinPath(key), t.Arch, want)
		}
		return &t
	}
	if arch == nil {
		return nil // reported: missing or not a name
	}
	for _, t := range targets {
		if t.Arch == kilnArch {
			return &t
		}
	}
	var have []string
	for _, t := range targets {
		n, _ := d.l.archName(t.Arch)
		have = append(have, n)
	}
	d.errorAt(arch.start, joinPath(key, region, arch.field.Name), "architecture %s is not built for key %s; use %s",
		quoteShort(arch.s), joinPath(key), strings.Join(have, " or "))
	return nil
}

// bound checks one value of a declared format against what its field is
// bound to and stores it in e. t is nil when the key stands for nothing
// known; then only what needs no target is checked.
func (d *decoder) bound(e *Entry, key, region string, t *Target, v rawValue) {
	path := joinPath(key, region, v.field.Name)
	disagree := func(what, want string) {
		d.errorAt(v.start, path, "%s disagrees with %s; want %s", quoteShort(v.s), what, strconv.Quote(want))
	}
	switch f := v.field; f.Source {
	case SourceID:
		e.ID = v.s
	case SourceName:
		e.Name = v.s
	case SourcePublic:
		e.Public = v.b
	case SourceArch:
		// checked by target
	case SourceRegion:
		if v.s != region {
			disagree("the region it is listed under ("+region+")", region)
		}
	case SourceKey:
		if v.s != key {
			disagree("the key it is listed under ("+key+")", key)
		}
	case SourceUseCase:
		if t != nil && v.s != t.UseCase {
			disagree("its key "+key+", which stands for use case "+t.UseCase, t.UseCase)
		}
	case SourceAttribute:
		if t != nil && v.s != t.Attributes[f.Attribute] {
			disagree(fmt.Sprintf("its key %s, whose use case %s has %s %q", key, t.UseCase, f.Attribute, t.Attributes[f.Attribute]), t.Attributes[f.Attribute])
		}
	case SourceConstant:
		if v.s != f.Value {
			d.errorAt(v.start, path, "must be %q in every entry (a constant of format %s); found %s", f.Value, d.l.f.Name, quoteShort(v.s))
		}
	case SourceDeprecation:
		if v.s == "" {
			return
		}
		tm, err := time.Parse(f.layout(), v.s)
		if err != nil || tm.UTC().Format(f.layout()) != v.s {
			d.errorAt(v.start, path, "%s is not a time in the layout %s, like %s; leave it \"\" for none",
				quoteShort(v.s), f.layout(), layoutProbe.Format(f.layout()))
			return
		}
		e.DeprecationTime = tm.UTC().Format(time.RFC3339)
	}
}

// didYouMean suggests the field that name differs from only in case.
func (d *decoder) didYouMean(name string) string {
	for _, f := range d.l.f.Fields {
		if strings.EqualFold(name, f.Name) {
			return fmt.Sprintf(" (did you mean %q?)", f.Name)
		}
	}
	return ""
}
