package manifest

import (
	"bufio"
	"cmp"
	"encoding/json"
	"io"
	"slices"
	"strconv"
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
	var changes []Change
	for _, l := range a.Entries() {
		old := l.Entry
		nw, ok := b.Get(l.UseCase, l.Region)
		if !ok {
			changes = append(changes, Change{UseCase: l.UseCase, Region: l.Region, Kind: Removed, Old: &old, Fields: fieldChanges(&old, nil)})
			continue
		}
		if old != nw {
			changes = append(changes, Change{UseCase: l.UseCase, Region: l.Region, Kind: Changed, Old: &old, New: &nw, Fields: fieldChanges(&old, &nw)})
		}
	}
	for _, l := range b.Entries() {
		if _, ok := a.Get(l.UseCase, l.Region); !ok {
			nw := l.Entry
			changes = append(changes, Change{UseCase: l.UseCase, Region: l.Region, Kind: Added, New: &nw, Fields: fieldChanges(nil, &nw)})
		}
	}
	slices.SortStableFunc(changes, func(x, y Change) int {
		return cmp.Or(cmp.Compare(x.UseCase, y.UseCase), cmp.Compare(x.Region, y.Region))
	})
	return changes
}

// fieldChanges lists the fields where old and nw differ; a nil side counts
// as every field absent.
func fieldChanges(old, nw *Entry) []FieldChange {
	var out []FieldChange
	for _, f := range fieldNames {
		var o, n string
		if old != nil {
			o = old.field(f)
		}
		if nw != nil {
			n = nw.field(f)
		}
		if old == nil || nw == nil || o != n {
			out = append(out, FieldChange{Field: f, Old: o, New: n})
		}
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
				bw.WriteString("+ " + path + ": " + formatValue(f.Field, f.New) + "\n")
			case Removed:
				bw.WriteString("- " + path + ": " + formatValue(f.Field, f.Old) + "\n")
			default:
				bw.WriteString("~ " + path + ": " + formatValue(f.Field, f.Old) + " -> " + formatValue(f.Field, f.New) + "\n")
			}
		}
	}
	return bw.Flush()
}

func formatValue(field, v string) string {
	if field == "public" {
		return v
	}
	return strconv.Quote(v)
}
