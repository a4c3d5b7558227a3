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
	if errs := m.validate(name, r, nil); len(errs) > 0 {
		return errs
	}
	return nil
}

// Check decodes data and validates the result against r. Unlike Decode
// followed by Validate, it gives validation errors a line and column too.
func Check(name string, data []byte, r Rules) (Manifest, error) {
	d := newDecoder(name, data)
	m := d.decode()
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	errs := m.validate(name, r, func(path string) (int, int) {
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

// validate does the work of Validate; pos, if not nil, gives the line and
// column of a path.
func (m Manifest) validate(name string, r Rules, pos func(path string) (line, col int)) Errors {
	var errs Errors
	add := func(path, format string, args ...any) {
		e := &Error{File: name, Path: path, Msg: fmt.Sprintf(format, args...)}
		if pos != nil {
			e.Line, e.Col = pos(path)
		}
		errs = append(errs, e)
	}
	seenUC := make(map[string]bool)
	for _, l := range m.Entries() {
		ucPath := joinPath(l.UseCase)
		if l.UseCase == "" && !seenUC[l.UseCase] {
			add(ucPath, "use case name is empty")
		}
		if hasControl(l.UseCase) && !seenUC[l.UseCase] {
			add(ucPath, "use case name %s holds control characters (such as NUL or ESC), which no consumer should be handed", quoteShort(l.UseCase))
		}
		seenUC[l.UseCase] = true

		path := joinPath(l.UseCase, l.Region)
		if r.ValidRegion != nil && !r.ValidRegion(l.Region) {
			add(path, "region %s is not valid; want %s", quoteShort(l.Region), r.RegionForm)
		}
		field := func(f string) string { return joinPath(l.UseCase, l.Region, f) }
		switch l.Architecture {
		case "x86_64", "arm64":
		default:
			add(field("architecture"), "architecture %s is not allowed; use x86_64 or arm64", quoteShort(l.Architecture))
		}
		if l.DeprecationTime != "" {
			if _, err := time.Parse(time.RFC3339, l.DeprecationTime); err != nil {
				add(field("deprecation_time"), "deprecation_time %s is not an RFC 3339 time like 2027-01-31T00:00:00Z; leave it \"\" for none",
					quoteShort(l.DeprecationTime))
			}
		}
		if r.ValidID != nil && !r.ValidID(l.ID) {
			add(field("id"), "id %s is not valid; want %s", quoteShort(l.ID), r.IDForm)
		}
		if l.Name == "" {
			add(field("name"), "name is empty")
		} else if hasControl(l.Name) {
			add(field("name"), "name %s holds control characters (such as NUL or ESC); image names never do", quoteShort(l.Name))
		}
		if len(errs) > maxErrors {
			errs = append(errs[:maxErrors], &Error{File: name, Msg: fmt.Sprintf("more than %d errors; stopping", maxErrors)})
			break
		}
	}
	return errs
}
