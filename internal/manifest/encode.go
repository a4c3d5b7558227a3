package manifest

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Encode returns m in kiln's own format: keys sorted at every level,
// fields in alphabetical order, two-space indent, no HTML escaping, a
// trailing newline. Equal manifests always encode to the same bytes, so a
// change is a small git diff. Use cases without regions are left out
// (Decode would reject them); an empty or nil manifest encodes as "{}\n".
func (m Manifest) Encode() []byte {
	data, err := DefaultLayout.Encode(m)
	if err != nil {
		// Kiln's format writes every value as it is.
		panic(err)
	}
	return data
}

// Encode returns m in the layout's format, as the consumer's own tooling
// writes it: keys and regions sorted, fields in the format's order, each
// derived from the entry, its key and its use case, indented, escaped and
// ended as the format's encoding says. An entry kiln cannot express in the
// format (a use case the format has no key for, an architecture without a
// name, a time it cannot parse) is an error, as is a layout that is not
// writable.
func (l *Layout) Encode(m Manifest) ([]byte, error) {
	if !l.writable {
		return nil, fmt.Errorf("format %s cannot be written: its key %q is shared by several architectures of a use case; it can only be read", l.f.Name, l.f.Key)
	}
	type object struct {
		key     string
		regions map[string][]value
	}
	byFile := map[string]*object{}
	for key, regions := range m {
		for region, e := range regions {
			fk, ok := l.FileKey(key)
			if !ok {
				return nil, fmt.Errorf("format %s has no key for %s: it is not a use case and architecture of this project", l.f.Name, joinPath(key))
			}
			var t *Target
			if !l.Default() {
				tt := l.byKey[key]
				t = &tt
			}
			vals, err := l.values(fk, t, region, e)
			if err != nil {
				return nil, fmt.Errorf("format %s: %s: %w", l.f.Name, joinPath(fk, region), err)
			}
			o := byFile[fk]
			if o == nil {
				o = &object{key: fk, regions: map[string][]value{}}
				byFile[fk] = o
			}
			o.regions[region] = vals
		}
	}
	enc := newEncoder(l.f.Encoding)
	enc.open()
	for i, fk := range slices.Sorted(maps.Keys(byFile)) {
		enc.member(i, fk)
		enc.open()
		o := byFile[fk]
		for j, r := range slices.Sorted(maps.Keys(o.regions)) {
			enc.member(j, r)
			enc.open()
			for k, v := range o.regions[r] {
				enc.member(k, v.name)
				if v.isBool {
					enc.b.WriteString(strconv.FormatBool(v.b))
				} else {
					enc.str(v.s)
				}
			}
			enc.close(len(o.regions[r]))
		}
		enc.close(len(o.regions))
	}
	enc.close(len(byFile))
	if l.f.Encoding.TrailingNewline {
		enc.b.WriteByte('\n')
	}
	return enc.b.Bytes(), nil
}

// value is one field of an entry as the file has it.
type value struct {
	name   string
	s      string
	b      bool
	isBool bool
}

// text is the value as FieldChange shows it.
func (v value) text() string {
	if v.isBool {
		return strconv.FormatBool(v.b)
	}
	return v.s
}

// values are the fields of e under file key fk in region, in file order.
// t is the target of a declared format's key, nil for kiln's format.
func (l *Layout) values(fk string, t *Target, region string, e Entry) ([]value, error) {
	out := make([]value, 0, len(l.f.Fields))
	for _, f := range l.f.Fields {
		v := value{name: f.Name}
		switch f.Source {
		case SourceID:
			v.s = e.ID
		case SourceName:
			v.s = e.Name
		case SourcePublic:
			v.b, v.isBool = e.Public, true
		case SourceRegion:
			v.s = region
		case SourceKey:
			v.s = fk
		case SourceConstant:
			v.s = f.Value
		case SourceArch:
			if t == nil {
				v.s = e.Architecture
				break
			}
			n, ok := l.archName(e.Architecture)
			if !ok {
				return nil, fmt.Errorf("architecture %q has no name in the format; its names are %s", e.Architecture, strings.Join(l.archNames(), ", "))
			}
			v.s = n
		case SourceUseCase:
			if t != nil {
				v.s = t.UseCase
			}
		case SourceAttribute:
			if t != nil {
				v.s = t.Attributes[f.Attribute]
			}
		case SourceDeprecation:
			if t == nil || e.DeprecationTime == "" {
				v.s = e.DeprecationTime
				break
			}
			tm, err := time.Parse(time.RFC3339, e.DeprecationTime)
			if err != nil {
				return nil, fmt.Errorf("deprecation time %q is not RFC 3339", e.DeprecationTime)
			}
			v.s = tm.UTC().Format(f.layout())
		}
		out = append(out, v)
	}
	return out, nil
}

// encoder writes JSON objects in an Encoding's layout.
type encoder struct {
	b     bytes.Buffer
	e     Encoding
	depth int
}

func newEncoder(e Encoding) *encoder { return &encoder{e: e} }

func (w *encoder) open() {
	w.b.WriteByte('{')
	w.depth++
}

// close ends an object of n members.
func (w *encoder) close(n int) {
	w.depth--
	if n > 0 && w.e.Indent > 0 {
		w.newline()
	}
	w.b.WriteByte('}')
}

// member starts the i-th member of the current object: separator, line
// break and indent, the key and the colon.
func (w *encoder) member(i int, key string) {
	if i > 0 {
		w.b.WriteByte(',')
		if w.e.Indent == 0 && !w.e.Compact {
			w.b.WriteByte(' ')
		}
	}
	if w.e.Indent > 0 {
		w.newline()
	}
	w.str(key)
	w.b.WriteByte(':')
	if !w.e.Compact {
		w.b.WriteByte(' ')
	}
}

func (w *encoder) newline() {
	w.b.WriteByte('\n')
	for range w.depth * w.e.Indent {
		w.b.WriteByte(' ')
	}
}

func (w *encoder) str(s string) {
	switch w.e.Escape {
	case EscapeASCII:
		writeStringASCII(&w.b, s)
	case EscapeHTML:
		writeStringHTML(&w.b, s)
	default:
		writeString(&w.b, s)
	}
}

// writeString writes s as a JSON string the way encoding/json does with
// HTML escaping off: short escapes where JSON has them, \u00XX for other
// control characters, U+FFFD for invalid UTF-8, and \u2028 and \u2029
// escaped so the file stays valid JavaScript.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c == '\b':
				b.WriteString(`\b`)
			case c == '\f':
				b.WriteString(`\f`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xF])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteString(`\ufffd`)
		case r == '\u2028':
			b.WriteString(`\u2028`)
		case r == '\u2029':
			b.WriteString(`\u2029`)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

// writeStringHTML is writeString that also escapes <, > and &, as Go's
// encoding/json does by default and Terraform's jsonencode does.
func writeStringHTML(b *bytes.Buffer, s string) {
	var tmp bytes.Buffer
	writeString(&tmp, s)
	for _, c := range tmp.Bytes() {
		switch c {
		case '<':
			b.WriteString(`\u003c`)
		case '>':
			b.WriteString(`\u003e`)
		case '&':
			b.WriteString(`\u0026`)
		default:
			b.WriteByte(c)
		}
	}
}

// writeStringASCII writes s as Python's json.dump does with ensure_ascii:
// short escapes where JSON has them, \u00XX for other control characters
// and DEL, and every non-ASCII character as \uXXXX (a surrogate pair above
// U+FFFF), with lowercase hex digits. Invalid UTF-8 is written as U+FFFD.
func writeStringASCII(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	u := func(r rune) {
		b.WriteString(`\u`)
		b.WriteByte(hex[r>>12&0xF])
		b.WriteByte(hex[r>>8&0xF])
		b.WriteByte(hex[r>>4&0xF])
		b.WriteByte(hex[r&0xF])
	}
	b.WriteByte('"')
	for _, r := range s { // invalid UTF-8 comes as U+FFFD
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteByte(byte(r))
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= 0x20 && r < 0x7f:
			b.WriteByte(byte(r))
		case r > 0xFFFF:
			r -= 0x10000
			u(0xD800 + r>>10&0x3FF)
			u(0xDC00 + r&0x3FF)
		default:
			u(r)
		}
	}
	b.WriteByte('"')
}
