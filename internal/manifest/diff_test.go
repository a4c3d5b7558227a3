package manifest

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func TestDiff(t *testing.T) {
	a := designEntry
	b := designEntry
	b.ID = "ami-0123abcd"
	b.Public = false
	c := designEntry
	c.Name = "debian"

	tests := []struct {
		name string
		a, b Manifest
		want []Change
	}{
		{"both nil", nil, nil, nil},
		{"equal", Manifest{"uc": {"r": a}}, Manifest{"uc": {"r": a}}, nil},
		{"empty use case is absent", Manifest{"uc": {}}, nil, nil},
		{"added", nil, Manifest{"uc": {"r": a}}, []Change{{
			UseCase: "uc", Region: "r", Kind: Added, New: &a,
			Fields: []FieldChange{
				{"architecture", "", "x86_64"}, {"deprecation_time", "", ""}, {"id", "", "ami-048b8191da9c5e202"},
				{"name", "", "ubuntu"}, {"public", "", "true"},
			},
		}}},
		{"removed", Manifest{"uc": {"r": a}}, Manifest{}, []Change{{
			UseCase: "uc", Region: "r", Kind: Removed, Old: &a,
			Fields: []FieldChange{
				{"architecture", "x86_64", ""}, {"deprecation_time", "", ""}, {"id", "ami-048b8191da9c5e202", ""},
				{"name", "ubuntu", ""}, {"public", "true", ""},
			},
		}}},
		{"changed", Manifest{"uc": {"r": a}}, Manifest{"uc": {"r": b}}, []Change{{
			UseCase: "uc", Region: "r", Kind: Changed, Old: &a, New: &b,
			Fields: []FieldChange{{"id", "ami-048b8191da9c5e202", "ami-0123abcd"}, {"public", "true", "false"}},
		}}},
		{"sorted by use case then region",
			Manifest{"b": {"r2": a, "r1": a}, "a": {"r9": a}},
			Manifest{"b": {"r1": c}, "a": {"r9": a, "r0": a}, "0": {"z": a}},
			[]Change{
				{UseCase: "0", Region: "z", Kind: Added, New: &a, Fields: allFields(nil, &a)},
				{UseCase: "a", Region: "r0", Kind: Added, New: &a, Fields: allFields(nil, &a)},
				{UseCase: "b", Region: "r1", Kind: Changed, Old: &a, New: &c, Fields: []FieldChange{{"name", "ubuntu", "debian"}}},
				{UseCase: "b", Region: "r2", Kind: Removed, Old: &a, Fields: allFields(&a, nil)},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Diff(tt.a, tt.b)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Diff:\n%+v\nwant:\n%+v", got, tt.want)
			}
		})
	}
}

// allFields lists every field of an added (old nil) or removed entry.
func allFields(old, nw *Entry) []FieldChange {
	f, _ := DefaultLayout.fieldChanges("k", "r", old, nw)
	return f
}

// diffPair is the big manifest and a release after it: one region dropped,
// one added, a new use case, an id replaced, a flag and a date changed.
func diffPair() (before, after Manifest) {
	before, after = bigManifest(), bigManifest()
	delete(after["notebook-cluster"], "eu-west-1")
	e, _ := after.Get("aws-linux-ephemeral", "us-east-1")
	after.Set("aws-linux-ephemeral", "sa-east-1", e)
	e.ID = "ami-0aaaaaaaaaaaaaaaa"
	after.Set("aws-linux-ephemeral", "us-east-1", e)
	e, _ = after.Get("data-science-sandbox", "eu-central-1")
	e.Public = true
	e.DeprecationTime = ""
	after.Set("data-science-sandbox", "eu-central-1", e)
	after.Set("gpu runner", "us-east-1", Entry{Architecture: "x86_64", ID: "ami-0bbbbbbbbbbbbbbbb", Name: "gpu <cuda> & co", Public: false})
	return before, after
}

func TestFormatDiffGolden(t *testing.T) {
	before, after := diffPair()
	var b bytes.Buffer
	if err := FormatDiff(&b, Diff(before, after)); err != nil {
		t.Fatal(err)
	}
	golden(t, "diff.golden", b.Bytes())

	// Nothing to say about equal manifests.
	b.Reset()
	if err := FormatDiff(&b, Diff(before, bigManifest())); err != nil || b.Len() != 0 {
		t.Fatalf("FormatDiff of equal manifests wrote %q, %v", b.String(), err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFormatDiffWriteError(t *testing.T) {
	before, after := diffPair()
	err := FormatDiff(failingWriter{}, Diff(before, after))
	if err == nil || err.Error() != "disk full" {
		t.Fatalf("FormatDiff to a failing writer: %v", err)
	}
}
