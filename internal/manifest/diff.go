package manifest

import (
	"bufio"
	"cmp"
	"encoding/json"
	"io"
	"slices"
	"strconv"
	"time"
)

// ChangeKind says what happened to one entry between two manifests.
type ChangeKind string

// The kinds of change.
const (
	Added   ChangeKind = "added"
	Removed ChangeKind = "removed"
	Changed ChangeKind = "changed"
)

// Change is the difference in one use case and region.
type Change struct {
	UseCase string     `json:"use_case"`
	Region  string     `json:"region"`
	Kind    ChangeKind `json:"kind"`
	Old     *Entry     `json:"old,omitempty"` // absent (nil) when added
	New     *Entry     `json:"new,omitempty"` // absent (nil) when removed
	// Fields lists the fields that differ, in field order. For an added or
	// removed entry it lists every field, with New or Old "" respectively.
	Fields []FieldChange `json:"fields"`

	// bools says which fields are booleans, for FormatDiff, when they are
	// others than "public".
	bools map[string]bool
}

// FieldChange is one field's old and new value as text (public is "true" or
// "false"). In JSON it is the field's name alone: the values, typed as in
// the manifest, are the change's old and new entries.
type FieldChange struct {
	Field, Old, New string
}

// MarshalJSON writes the field's name.
func (f FieldChange) MarshalJSON() ([]byte, error) { return json.Marshal(f.Field) }

// UnmarshalJSON reads a field's name; the values are left empty (they are
// in the change's entries).
func (f *FieldChange) UnmarshalJSON(data []byte) error {
	*f = FieldChange{}
	return json.Unmarshal(data, &f.Field)
}

// Diff returns how b differs from a, sorted by use case, then region. Equal
// manifests give no changes.
func Diff(a, b Manifest) []Change {
	return DiffLayouts(a, DefaultLayout, b, DefaultLayout)
}

// DiffLayouts returns how b, a manifest in layout lb, differs from a, in
// layout la: entries are matched by use case, architecture and region
// whatever keys the files use, and compared on the fields both formats
// hold from the cloud (id, name, architecture, public, deprecation time,
// the time compared as a time, not as text), so that a change of format
// alone shows no change. Changes name keys and fields as the files do (b's
// for added and changed entries, a's for removed ones) and give values as
// the files write them. Sorted by key, then region.
func DiffLayouts(a Manifest, la *Layout, b Manifest, lb *Layout) []Change {
	var changes []Change
	for _, l := range a.Entries() {
		old := l.Entry
		nw, ok := b.Get(l.UseCase, l.Region)
		if !ok {
			c := Change{UseCase: la.fileKeyOr(l.UseCase), Region: l.Region, Kind: Removed, Old: &old}
			c.Fields, c.bools = la.fieldChanges(l.UseCase, l.Region, &old, nil)
			changes = append(changes, c)
			continue
		}
		if fields, bools := changedFields(l.UseCase, l.Region, la, old, lb, nw); len(fields) > 0 {
			changes = append(changes, Change{UseCase: lb.fileKeyOr(l.UseCase), Region: l.Region, Kind: Changed, Old: &old, New: &nw, Fields: fields, bools: bools})
		}
	}
	for _, l := range b.Entries() {
		if _, ok := a.Get(l.UseCase, l.Region); !ok {
			nw := l.Entry
			c := Change{UseCase: lb.fileKeyOr(l.UseCase), Region: l.Region, Kind: Added, New: &nw}
			c.Fields, c.bools = lb.fieldChanges(l.UseCase, l.Region, nil, &nw)
			changes = append(changes, c)
		}
	}
	slices.SortStableFunc(changes, func(x, y Change) int {
		return cmp.Or(cmp.Compare(x.UseCase, y.UseCase), cmp.Compare(x.Region, y.Region))
	})
	return changes
}

// fileKeyOr returns the file's key for kiln's key, or kiln's key when the
// format has none for it.
func (l *Layout) fileKeyOr(key string) string {
	if fk, ok := l.FileKey(key); ok {
		return fk
	}
	return key
}

// fileValues returns the fields of e as the layout writes them, or, when
// it cannot write them (a key or name it lacks), kiln's own.
func (l *Layout) fileValues(key, region string, e *Entry) (*Layout, []value) {
	if fk, ok := l.FileKey(key); ok {
		var t *Target
		if !l.Default() {
			tt := l.byKey[key]
			t = &tt
		}
		if vals, err := l.values(fk, t, region, *e); err == nil {
			return l, vals
		}
	}
	vals, _ := DefaultLayout.values(key, nil, region, *e)
	return DefaultLayout, vals
}

// fieldChanges lists every field of an added (old nil) or removed (nw nil)
// entry, as the file has them.
func (l *Layout) fieldChanges(key, region string, old, nw *Entry) ([]FieldChange, map[string]bool) {
	e := old
	if e == nil {
		e = nw
	}
	used, vals := l.fileValues(key, region, e)
	out := make([]FieldChange, len(vals))
	for i, v := range vals {
		if old != nil {
			out[i] = FieldChange{Field: v.name, Old: v.text()}
		} else {
			out[i] = FieldChange{Field: v.name, New: v.text()}
		}
	}
	return out, used.boolFields()
}

// changedFields lists the fields in which the entry differs between a and
// b, named and written as b has them; only what both formats hold from the
// cloud is compared.
func changedFields(key, region string, la *Layout, old Entry, lb *Layout, nw Entry) ([]FieldChange, map[string]bool) {
	usedA, va := la.fileValues(key, region, &old)
	usedB, vb := lb.fileValues(key, region, &nw)
	text := func(used *Layout, vals []value, s FieldSource) (string, bool) {
		for i, f := range used.f.Fields {
			if f.Source == s {
				return vals[i].text(), true
			}
		}
		return "", false
	}
	var out []FieldChange
	for i, f := range usedB.f.Fields {
		if !slices.Contains(cloudSources, f.Source) || (f.Source != SourceArch && !usedA.Binds(f.Source)) {
			continue
		}
		if sameSource(f.Source, old, nw, la != lb) {
			continue
		}
		o, ok := text(usedA, va, f.Source)
		if !ok && f.Source == SourceArch {
			o = old.Architecture // the key said it
		}
		out = append(out, FieldChange{Field: f.Name, Old: o, New: vb[i].text()})
	}
	if len(out) == 0 && old.Architecture != nw.Architecture && !usedB.Binds(SourceArch) {
		// Kiln's keys differ by architecture, so this cannot happen through
		// files; say it rather than hide it.
		out = append(out, FieldChange{Field: "architecture", Old: old.Architecture, New: nw.Architecture})
	}
	return out, usedB.boolFields()
}

// sameSource reports whether a and b agree on what s holds. Deprecation
// times are compared as times across formats (whose layouts differ), as
// text within one (where another text is another file).
func sameSource(s FieldSource, a, b Entry, acrossFormats bool) bool {
	switch s {
	case SourceID:
		return a.ID == b.ID
	case SourceName:
		return a.Name == b.Name
	case SourceArch:
		return a.Architecture == b.Architecture
	case SourcePublic:
		return a.Public == b.Public
	case SourceDeprecation:
		if a.DeprecationTime == b.DeprecationTime || !acrossFormats {
			return a.DeprecationTime == b.DeprecationTime
		}
		ta, errA := time.Parse(time.RFC3339, a.DeprecationTime)
		tb, errB := time.Parse(time.RFC3339, b.DeprecationTime)
		return errA == nil && errB == nil && ta.Equal(tb)
	}
	return true
}

// boolFields names the layout's boolean fields when they are other than
// kiln's "public", for FormatDiff; nil means just "public".
func (l *Layout) boolFields() map[string]bool {
	var out map[string]bool
	plain := true
	for _, f := range l.f.Fields {
		if (f.Source == SourcePublic) != (f.Name == "public") {
			plain = false
		}
	}
	if plain {
		return nil
	}
	out = map[string]bool{}
	for _, f := range l.f.Fields {
		out[f.Name] = f.Source == SourcePublic
	}
	return out
}

// FormatDiff writes changes for people, one line per field. An added
// entry's fields are marked "+", a removed entry's "-", a changed field "~":
//
//	~ aws-linux-ephemeral.us-east-1.id: "ami-0123abcd" -> "ami-4567ef01"
//
// Strings are quoted so that empty values and spaces show; public is bare.
// No changes write nothing.
func FormatDiff(w io.Writer, changes []Change) error {
	bw := bufio.NewWriter(w)
	for _, c := range changes {
		for _, f := range c.Fields {
			path := joinPath(c.UseCase, c.Region, f.Field)
			switch c.Kind {
			case Added:
				bw.WriteString("+ " + path + ": " + c.formatValue(f.Field, f.New) + "\n")
			case Removed:
				bw.WriteString("- " + path + ": " + c.formatValue(f.Field, f.Old) + "\n")
			default:
				bw.WriteString("~ " + path + ": " + c.formatValue(f.Field, f.Old) + " -> " + c.formatValue(f.Field, f.New) + "\n")
			}
		}
	}
	return bw.Flush()
}

func (c Change) formatValue(field, v string) string {
	bare := field == "public"
	if c.bools != nil {
		bare = c.bools[field]
	}
	if bare {
		return v
	}
	return strconv.Quote(v)
}
