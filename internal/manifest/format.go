package manifest

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// FieldSource is what a field of a manifest entry holds.
type FieldSource string

// The sources a field can be bound to.
const (
	SourceID          FieldSource = "id"               // the image id
	SourceName        FieldSource = "name"             // the image's name in the cloud
	SourceRegion      FieldSource = "region"           // the region, as the entry's key says it
	SourceArch        FieldSource = "arch"             // the architecture, under the format's arch names
	SourcePublic      FieldSource = "public"           // launchable by everyone (a JSON boolean)
	SourceDeprecation FieldSource = "deprecation_time" // the deprecation time in the field's layout, "" for none
	SourceUseCase     FieldSource = "use_case"         // the use case's name
	SourceKey         FieldSource = "key"              // the entry's manifest key
	SourceAttribute   FieldSource = "attribute"        // one of the use case's attributes
	SourceConstant    FieldSource = "constant"         // the same text in every entry
)

// Sources lists the sources in the order messages name them.
var Sources = []FieldSource{
	SourceID, SourceName, SourceRegion, SourceArch, SourcePublic, SourceDeprecation,
	SourceUseCase, SourceKey, SourceAttribute, SourceConstant,
}

// cloudSources are the sources whose values come from the image in the
// cloud; drift compares these and nothing else.
var cloudSources = []FieldSource{SourceArch, SourceDeprecation, SourceID, SourceName, SourcePublic}

// Field is one field of an entry: its JSON name and what it holds.
type Field struct {
	Name   string
	Source FieldSource
	// Attribute names the use-case attribute of a SourceAttribute field.
	Attribute string
	// Value is the text of a SourceConstant field.
	Value string
	// Layout is the Go time layout of a SourceDeprecation field, e.g.
	// "2006-01-02T15:04:05.000Z07:00"; "" is RFC 3339.
	Layout string
}

// layout returns the field's time layout.
func (f Field) layout() string {
	if f.Layout == "" {
		return time.RFC3339
	}
	return f.Layout
}

// Escape says which characters an encoding writes as \u escapes besides
// those JSON requires.
type Escape string

const (
	// EscapeJSON escapes only what JSON needs, plus U+2028 and U+2029 (Go's
	// encoding/json with HTML escaping off).
	EscapeJSON Escape = "json"
	// EscapeHTML adds <, > and & (Go's encoding/json by default, Terraform's
	// jsonencode).
	EscapeHTML Escape = "html"
	// EscapeASCII escapes everything outside printable ASCII (Python's
	// json.dump with its default ensure_ascii).
	EscapeASCII Escape = "ascii"
)

// Encoding says how a manifest's bytes are laid out.
type Encoding struct {
	// Indent is the number of spaces per level; 0 writes the document on
	// one line.
	Indent int
	// Compact leaves out the spaces after ':' and ',' on one line
	// (Terraform's jsonencode) instead of writing ": " and ", " (Python's
	// json.dump without indent). Only with Indent 0.
	Compact bool
	// TrailingNewline ends the file with a newline.
	TrailingNewline bool
	// Escape is the escaping of strings; "" means EscapeJSON.
	Escape Escape
}

// Format says how a channel's manifest file looks: which key stands for a
// use case and architecture, which fields an entry has in which order, and
// how the bytes are laid out. Keys are always written sorted, as are the
// regions under a key.
type Format struct {
	// Name names the format in messages.
	Name string
	// Key is the template of the keys, with placeholders {use_case}, {arch}
	// (under Arch's names) and the use cases' attributes, e.g.
	// "{os}-{arch}-{role}". "" means kiln's own keys: the use case's name,
	// or name-arch for a use case with several architectures.
	Key string
	// Arch maps kiln's architecture names (x86_64, arm64) to the names the
	// file uses, e.g. x86_64 → amd64. Empty means kiln's names.
	Arch map[string]string
	// Fields are the fields of every entry, in file order.
	Fields []Field
	// Encoding is the layout of the bytes.
	Encoding Encoding
}

// Default is kiln's own manifest format: kiln's keys, the fields
// architecture, deprecation_time (RFC 3339), id, name and public in that
// order, two-space indent and a trailing newline.
var Default = &Format{
	Name: "kiln",
	Fields: []Field{
		{Name: "architecture", Source: SourceArch},
		{Name: "deprecation_time", Source: SourceDeprecation},
		{Name: "id", Source: SourceID},
		{Name: "name", Source: SourceName},
		{Name: "public", Source: SourcePublic},
	},
	Encoding: Encoding{Indent: 2, TrailingNewline: true},
}

// Architectures are kiln's architecture names.
var Architectures = []string{"x86_64", "arm64"}

// placeholderRE matches one placeholder of a key template.
var placeholderRE = regexp.MustCompile(`\{([^{}]*)\}`)

// attributeNameRE is the form of attribute names, and so of placeholders.
var attributeNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// ValidAttributeName reports whether s may name a use-case attribute.
func ValidAttributeName(s string) bool { return attributeNameRE.MatchString(s) }

// FormatError is one problem with a format's declaration. Where is the part
// it concerns, relative to the format: "key", "arch", "fields[2].layout",
// "encoding.compact", or "" for the whole format.
type FormatError struct {
	Where string
	Msg   string
}

func (e *FormatError) Error() string {
	if e.Where == "" {
		return e.Msg
	}
	return e.Where + ": " + e.Msg
}

// Placeholders returns the names of the key template's placeholders, in
// order, each once.
func (f *Format) Placeholders() []string {
	var out []string
	for _, m := range placeholderRE.FindAllStringSubmatch(f.Key, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// Attributes returns the use-case attributes the format reads, from its key
// and its fields, sorted.
func (f *Format) Attributes() []string {
	set := map[string]bool{}
	for _, p := range f.Placeholders() {
		if p != "use_case" && p != "arch" {
			set[p] = true
		}
	}
	for _, fd := range f.Fields {
		if fd.Source == SourceAttribute {
			set[fd.Attribute] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Check returns the problems of the format on its own, before it is bound
// to use cases: fields named once each, an id field, known sources, time
// layouts that read back what they write, placeholders, arch names and
// encoding settings. Nil means none.
func (f *Format) Check() []*FormatError {
	var errs []*FormatError
	add := func(where, format string, args ...any) {
		errs = append(errs, &FormatError{Where: where, Msg: fmt.Sprintf(format, args...)})
	}
	if f.Key == "" {
		add("key", "missing; give a key template such as \"{use_case}\" or \"{os}-{arch}-{role}\"")
	} else {
		rest := placeholderRE.ReplaceAllString(f.Key, "")
		if strings.ContainsAny(rest, "{}") {
			add("key", "%q has an unmatched { or }; placeholders are written {name}", f.Key)
		}
		for _, p := range f.Placeholders() {
			if p != "use_case" && p != "arch" && !ValidAttributeName(p) {
				add("key", "placeholder {%s} is not {use_case}, {arch} or the name of a use-case attribute (a lowercase letter, then lowercase letters, digits or _)", p)
			}
		}
		if !strings.Contains(f.Key, "{") {
			add("key", "%q has no placeholder; every use case would get the same key", f.Key)
		}
	}
	for k, v := range f.Arch {
		if !slices.Contains(Architectures, k) {
			add("arch", "%q is not an architecture kiln builds; the keys are %s", k, strings.Join(Architectures, ", "))
		}
		if v == "" {
			add("arch", "%s maps to an empty name", k)
		}
	}
	names := map[string]int{}
	if len(f.Fields) == 0 {
		add("fields", "no fields; list the fields of an entry in file order")
	}
	hasID := false
	for i, fd := range f.Fields {
		where := fmt.Sprintf("fields[%d]", i)
		if fd.Name == "" {
			add(where+".name", "missing; give the field's JSON name")
		} else if first, dup := names[fd.Name]; dup {
			add(where+".name", "field %q is listed twice (first as fields[%d])", fd.Name, first)
		} else {
			names[fd.Name] = i
		}
		switch fd.Source {
		case SourceID:
			hasID = true
		case SourceName, SourceRegion, SourceArch, SourcePublic, SourceUseCase, SourceKey:
		case SourceDeprecation:
			if err := checkLayout(fd.Layout); err != nil {
				add(where+".layout", "%v", err)
			}
		case SourceAttribute:
			if !ValidAttributeName(fd.Attribute) {
				add(where+".attribute", "%q is not an attribute name (a lowercase letter, then lowercase letters, digits or _)", fd.Attribute)
			}
		case SourceConstant:
		case "":
			add(where, "says neither where its value comes from nor a constant value")
		default:
			add(where+".source", "unknown source %q; allowed: %s", fd.Source, sourceList())
		}
		if fd.Source != SourceDeprecation && fd.Layout != "" {
			add(where+".layout", "only a deprecation_time field has a time layout")
		}
		if fd.Source != SourceAttribute && fd.Attribute != "" {
			add(where+".attribute", "only a field with source attribute names an attribute")
		}
	}
	if len(f.Fields) > 0 && !hasID {
		add("fields", "no field holds the image id (source id); consumers and kiln need it")
	}
	seen := map[FieldSource]string{}
	for _, fd := range f.Fields {
		if fd.Source == SourceID || fd.Source == SourceName || fd.Source == SourcePublic || fd.Source == SourceDeprecation {
			if other, dup := seen[fd.Source]; dup {
				add("fields", "fields %q and %q both hold %s; kiln could not tell which to trust", other, fd.Name, fd.Source)
			}
			seen[fd.Source] = fd.Name
		}
	}
	e := f.Encoding
	if e.Indent < 0 || e.Indent > 8 {
		add("encoding.indent", "%d is not between 0 (one line) and 8 spaces", e.Indent)
	}
	if e.Compact && e.Indent != 0 {
		add("encoding.compact", "compact applies to one-line files only (indent 0)")
	}
	switch e.Escape {
	case "", EscapeJSON, EscapeHTML, EscapeASCII:
	default:
		add("encoding.escape", "unknown escaping %q; allowed: json, html, ascii", e.Escape)
	}
	return errs
}

func sourceList() string {
	s := make([]string, len(Sources))
	for i, src := range Sources {
		s[i] = string(src)
	}
	return strings.Join(s, ", ")
}

// layoutProbe is the time a layout must write and read back.
var layoutProbe = time.Date(2027, 11, 21, 22, 33, 9, 0, time.UTC)

// checkLayout reports whether a time layout writes a time that it reads
// back as the same second, so that kiln can rewrite what it reads.
func checkLayout(layout string) error {
	if layout == "" {
		return nil
	}
	s := layoutProbe.Format(layout)
	t, err := time.Parse(layout, s)
	if err != nil || !t.Equal(layoutProbe) {
		return fmt.Errorf("time layout %q does not read back what it writes (%s); use a Go layout with date, time and zone, "+
			"such as 2006-01-02T15:04:05Z07:00 or 2006-01-02T15:04:05.000Z", layout, s)
	}
	return nil
}

// Target is one use case and architecture of a project, as a format's key
// stands for it.
type Target struct {
	UseCase string
	Arch    string // kiln's name: x86_64 or arm64
	// Key is kiln's own key of the pair (the key the in-memory Manifest
	// uses, whatever the file's format).
	Key        string
	Attributes map[string]string
}

// Layout is a format bound to a project's use cases: it knows which key
// each use case and architecture gets, and so can read, check and write
// files in the format. Layouts are immutable and safe for concurrent use.
type Layout struct {
	f *Format
	// byFile maps a file key to the targets it stands for: one, or for a
	// format that reads the architecture from a field, one per
	// architecture of a use case.
	byFile map[string][]Target
	// byKey maps kiln's key to its target and file key.
	byKey    map[string]Target
	fileKey  map[string]string
	field    map[FieldSource]Field // the first field of each source
	writable bool
}

// DefaultLayout reads and writes kiln's own format. It accepts any key.
var DefaultLayout = mustBind(Default, nil)

func mustBind(f *Format, targets []Target) *Layout {
	l, errs := f.Bind(targets)
	if len(errs) > 0 {
		panic(errs[0])
	}
	return l
}

// Format returns the layout's format.
func (l *Layout) Format() *Format { return l.f }

// Default reports whether the layout is kiln's own format.
func (l *Layout) Default() bool { return l.f.Key == "" }

// Writable reports whether kiln can write files in this layout: false when
// two architectures of a use case share a key, which a format may do only
// to read history whose entries name their architecture.
func (l *Layout) Writable() bool { return l.writable }

// Binds reports whether an entry has a field holding s.
func (l *Layout) Binds(s FieldSource) bool {
	_, ok := l.field[s]
	return ok
}

// Keys returns the file keys the layout accepts, sorted; nil for the
// default layout, which accepts any.
func (l *Layout) Keys() []string {
	if l.Default() {
		return nil
	}
	return slices.Sorted(maps.Keys(l.byFile))
}

// FileKey returns the key the file uses for kiln's key.
func (l *Layout) FileKey(key string) (string, bool) {
	if l.Default() {
		return key, true
	}
	k, ok := l.fileKey[key]
	return k, ok
}

// archName returns the file's name for a kiln architecture.
func (l *Layout) archName(arch string) (string, bool) {
	if len(l.f.Arch) == 0 {
		return arch, slices.Contains(Architectures, arch)
	}
	n, ok := l.f.Arch[arch]
	return n, ok
}

// archNames lists the file's architecture names, for messages.
func (l *Layout) archNames() []string {
	if len(l.f.Arch) == 0 {
		return Architectures
	}
	var out []string
	for _, a := range Architectures {
		if n, ok := l.f.Arch[a]; ok {
			out = append(out, n)
		}
	}
	return out
}

// kilnArch returns kiln's name for the file's architecture name.
func (l *Layout) kilnArch(name string) (string, bool) {
	if len(l.f.Arch) == 0 {
		return name, slices.Contains(Architectures, name)
	}
	for k, v := range l.f.Arch {
		if v == name {
			return k, true
		}
	}
	return "", false
}

// Bind binds the format to a project's use cases and architectures. The
// errors say what in the format does not fit them: a key template that
// gives two use cases (or two architectures of one, without an arch field
// to tell them apart) the same key, an attribute a use case lacks, an
// architecture without a name. Kiln's own format accepts any key and needs
// no targets.
func (f *Format) Bind(targets []Target) (*Layout, []*FormatError) {
	l := &Layout{f: f, field: map[FieldSource]Field{}, writable: true}
	for _, fd := range f.Fields {
		if _, ok := l.field[fd.Source]; !ok {
			l.field[fd.Source] = fd
		}
	}
	if f.Key == "" {
		return l, nil
	}
	var errs []*FormatError
	add := func(where, format string, args ...any) {
		errs = append(errs, &FormatError{Where: where, Msg: fmt.Sprintf(format, args...)})
	}
	if len(f.Arch) > 0 {
		names := map[string]string{}
		for _, k := range slices.Sorted(maps.Keys(f.Arch)) {
			if other, dup := names[f.Arch[k]]; dup {
				add("arch", "%s and %s both map to %q; each architecture needs its own name", other, k, f.Arch[k])
			}
			names[f.Arch[k]] = k
		}
	}
	l.byFile = map[string][]Target{}
	l.byKey = map[string]Target{}
	l.fileKey = map[string]string{}
	archField := l.Binds(SourceArch)
	reported := map[string]bool{}
	for _, t := range targets {
		key, err := l.expand(t)
		if err != nil {
			if !reported[err.Msg] {
				reported[err.Msg] = true
				errs = append(errs, err)
			}
			continue
		}
		if archField {
			if _, ok := l.archName(t.Arch); !ok {
				msg := fmt.Sprintf("architecture %s of use case %s has no name here; name it (e.g. %s: amd64) or leave arch out for kiln's names", t.Arch, t.UseCase, t.Arch)
				if !reported[msg] {
					reported[msg] = true
					add("arch", "%s", msg)
				}
			}
		}
		for _, fd := range f.Fields {
			if fd.Source == SourceAttribute {
				if _, ok := t.Attributes[fd.Attribute]; !ok {
					msg := fmt.Sprintf("use case %s has no attribute %q, which field %q holds; set use_cases.%s.attributes.%s",
						t.UseCase, fd.Attribute, fd.Name, t.UseCase, fd.Attribute)
					if !reported[msg] {
						reported[msg] = true
						add("fields", "%s", msg)
					}
				}
			}
		}
		for _, other := range l.byFile[key] {
			switch {
			case other.UseCase != t.UseCase:
				add("key", "template %q gives use cases %s (%s) and %s (%s) the same key %q; add a placeholder that tells them apart",
					f.Key, other.UseCase, other.Arch, t.UseCase, t.Arch, key)
			case !archField:
				add("key", "template %q gives both architectures of use case %s (%s, %s) the key %q; add {arch}",
					f.Key, t.UseCase, other.Arch, t.Arch, key)
			default:
				// History whose entries say their architecture can be read,
				// but kiln cannot write both into one key.
				l.writable = false
			}
		}
		l.byFile[key] = append(l.byFile[key], t)
		l.byKey[t.Key] = t
		l.fileKey[t.Key] = key
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return l, nil
}

// expand returns the file key of t.
func (l *Layout) expand(t Target) (string, *FormatError) {
	var err *FormatError
	key := placeholderRE.ReplaceAllStringFunc(l.f.Key, func(p string) string {
		name := p[1 : len(p)-1]
		switch name {
		case "use_case":
			return t.UseCase
		case "arch":
			n, ok := l.archName(t.Arch)
			if !ok && err == nil {
				err = &FormatError{Where: "arch", Msg: fmt.Sprintf("architecture %s of use case %s has no name here; name it (e.g. %s: amd64) or leave arch out for kiln's names",
					t.Arch, t.UseCase, t.Arch)}
			}
			return n
		}
		v, ok := t.Attributes[name]
		if !ok && err == nil {
			err = &FormatError{Where: "key", Msg: fmt.Sprintf("use case %s has no attribute %q, which the key template %q uses; set use_cases.%s.attributes.%s",
				t.UseCase, name, l.f.Key, t.UseCase, name)}
		}
		return v
	})
	if err != nil {
		return "", err
	}
	if key == "" {
		return "", &FormatError{Where: "key", Msg: fmt.Sprintf("template %q gives use case %s (%s) an empty key", l.f.Key, t.UseCase, t.Arch)}
	}
	return key, nil
}
