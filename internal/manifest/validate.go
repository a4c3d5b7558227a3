package manifest

import (
	"fmt"
	"strings"
	"time"
	"unicode"
)

// hasControl reports whether s holds a control character: printed to a
// terminal, ESC sequences rewrite what the reader sees.
func hasControl(s string) bool { return strings.ContainsFunc(s, unicode.IsControl) }

// Validate checks the values in m: use case names non-empty, region names
// and image ids of the form r allows, architecture x86_64 or arm64,
// deprecation_time empty or RFC 3339, name non-empty. name is the file name
// for messages. The error, if any, is Errors with every problem, sorted by
// use case, region and field. Errors from Validate carry no line numbers;
// Check gives them.
func (m Manifest) Validate(name string, r Rules) error {
	return DefaultLayout.Validate(name, m, r)
}

// Validate checks the values in m as a manifest in the layout's format,
// naming keys and fields as the file does: the checks of Manifest.Validate
// for the fields the format has, and, for a declared format, that every key
// of m is a use case and architecture the format has a key for.
func (l *Layout) Validate(name string, m Manifest, r Rules) error {
	if errs := l.validate(name, m, r, nil); len(errs) > 0 {
		return errs
	}
	return nil
}

// Check decodes data in kiln's format and validates the result against r.
// Unlike Decode followed by Validate, it gives validation errors a line and
// column too.
func Check(name string, data []byte, r Rules) (Manifest, error) {
	return DefaultLayout.Check(name, data, r)
}

// Check decodes data in the layout's format and validates the result
// against r, with line and column in every error.
func (l *Layout) Check(name string, data []byte, r Rules) (Manifest, error) {
	d := newDecoder(name, data, l)
	m := d.decode()
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	errs := l.validate(name, m, r, func(key, region string) string { return d.fileKeys[[2]string{key, region}] },
		func(path string) (int, int) {
			off, ok := d.pos[path]
			if !ok {
				return 0, 0
			}
			return d.position(off)
		})
	if len(errs) > 0 {
		return nil, errs
	}
	return m, nil
}

// validate does the work of Validate. fileKey, if not nil, gives the key the
// file uses for kiln's key in a region; pos, if not nil, the line and column
// of a path.
func (l *Layout) validate(name string, m Manifest, r Rules, fileKey func(key, region string) string, pos ...func(path string) (line, col int)) Errors {
	var errs Errors
	add := func(path, format string, args ...any) {
		e := &Error{File: name, Path: path, Msg: fmt.Sprintf(format, args...)}
		if len(pos) > 0 && pos[0] != nil {
			e.Line, e.Col = pos[0](path)
		}
		errs = append(errs, e)
	}
	seenUC := make(map[string]bool)
	for _, le := range m.Entries() {
		fk, known := l.FileKey(le.UseCase)
		if fileKey != nil {
			if k := fileKey(le.UseCase, le.Region); k != "" {
				fk, known = k, true
			}
		}
		if !known {
			if !seenUC[le.UseCase] {
				add(joinPath(le.UseCase), "format %s has no key for %s: it is not a use case and architecture of this project; the keys are %s",
					l.f.Name, joinPath(le.UseCase), keyList(l.Keys()))
			}
			seenUC[le.UseCase] = true
			continue
		}
		if le.UseCase == "" && !seenUC[le.UseCase] {
			add(joinPath(fk), "use case name is empty")
		}
		if hasControl(le.UseCase) && !seenUC[le.UseCase] {
			add(joinPath(fk), "use case name %s holds control characters (such as NUL or ESC), which no consumer should be handed", quoteShort(le.UseCase))
		}
		seenUC[le.UseCase] = true

		path := joinPath(fk, le.Region)
		if r.ValidRegion != nil && !r.ValidRegion(le.Region) {
			add(path, "region %s is not valid; want %s", quoteShort(le.Region), r.RegionForm)
		}
		field := func(s FieldSource) (string, bool) {
			f, ok := l.field[s]
			return joinPath(fk, le.Region, f.Name), ok
		}
		if p, ok := field(SourceArch); ok || !l.Default() {
			if l.Default() {
				switch le.Architecture {
				case "x86_64", "arm64":
				default:
					add(p, "architecture %s is not allowed; use x86_64 or arm64", quoteShort(le.Architecture))
				}
			} else if _, named := l.archName(le.Architecture); ok && !named {
				add(p, "architecture %s has no name in format %s; its names are for %s", quoteShort(le.Architecture), l.f.Name, strings.Join(l.archNames(), ", "))
			}
		}
		if p, ok := field(SourceDeprecation); ok && le.DeprecationTime != "" {
			if _, err := time.Parse(time.RFC3339, le.DeprecationTime); err != nil {
				add(p, "deprecation_time %s is not an RFC 3339 time like 2027-01-31T00:00:00Z; leave it \"\" for none",
					quoteShort(le.DeprecationTime))
			}
		}
		if p, ok := field(SourceID); ok && r.ValidID != nil && !r.ValidID(le.ID) {
			add(p, "id %s is not valid; want %s", quoteShort(le.ID), r.IDForm)
		}
		if p, ok := field(SourceName); ok && le.Name == "" {
			add(p, "name is empty")
		} else if ok && hasControl(le.Name) {
			add(p, "name %s holds control characters (such as NUL or ESC); image names never do", quoteShort(le.Name))
		}
		if len(errs) > maxErrors {
			errs = append(errs[:maxErrors], &Error{File: name, Msg: fmt.Sprintf("more than %d errors; stopping", maxErrors)})
			break
		}
	}
	return errs
}
