package manifest

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Encode returns m in canonical form: keys sorted at every level, fields in
// alphabetical order, two-space indent, no HTML escaping, a trailing newline.
// Equal manifests always encode to the same bytes, so a change is a small
// git diff. Use cases without regions are left out (Decode would reject
// them); an empty or nil manifest encodes as "{}\n".
func (m Manifest) Encode() []byte {
	var ucs []string
	for uc, regions := range m {
		if len(regions) > 0 {
			ucs = append(ucs, uc)
		}
	}
	if len(ucs) == 0 {
		return []byte("{}\n")
	}
	slices.Sort(ucs)

	var b bytes.Buffer
	b.WriteString("{\n")
	for i, uc := range ucs {
		b.WriteString("  ")
		writeString(&b, uc)
		b.WriteString(": {\n")
		regions := slices.Sorted(maps.Keys(m[uc]))
		for j, r := range regions {
			e := m[uc][r]
			b.WriteString("    ")
			writeString(&b, r)
			b.WriteString(": {\n")
			for _, f := range fieldNames {
				b.WriteString(`      "` + f + `": `)
				if f == "public" {
					b.WriteString(strconv.FormatBool(e.Public) + "\n")
					continue
				}
				writeString(&b, e.field(f))
				b.WriteString(",\n")
			}
			b.WriteString("    }")
			writeComma(&b, j < len(regions)-1)
		}
		b.WriteString("  }")
		writeComma(&b, i < len(ucs)-1)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func writeComma(b *bytes.Buffer, more bool) {
	if more {
		b.WriteByte(',')
	}
	b.WriteByte('\n')
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
