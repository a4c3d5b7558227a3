package manifest

import (
	"slices"
	"testing"
)

func TestSetGet(t *testing.T) {
	m := Manifest{}
	if _, ok := m.Get("uc", "r"); ok {
		t.Fatal("Get on an empty manifest found an entry")
	}
	m.Set("uc", "r", designEntry)
	got, ok := m.Get("uc", "r")
	if !ok || got != designEntry {
		t.Fatalf("Get = %+v, %v; want %+v, true", got, ok, designEntry)
	}
	e2 := designEntry
	e2.ID = "ami-12345678"
	m.Set("uc", "r", e2)
	if got, _ := m.Get("uc", "r"); got != e2 {
		t.Fatalf("after replacing, Get = %+v; want %+v", got, e2)
	}
	if _, ok := m.Get("uc", "other"); ok {
		t.Fatal("Get found an entry in a region never set")
	}
	var nilM Manifest
	if _, ok := nilM.Get("uc", "r"); ok {
		t.Fatal("Get on a nil manifest found an entry")
	}
}

func TestEntriesSorted(t *testing.T) {
	m := Manifest{}
	for _, p := range [][2]string{{"b", "us-east-1"}, {"a", "eu-west-1"}, {"b", "ap-south-1"}, {"a", "us-east-1"}} {
		m.Set(p[0], p[1], Entry{Name: p[0] + "/" + p[1]})
	}
	var got []string
	for _, l := range m.Entries() {
		if l.Name != l.UseCase+"/"+l.Region {
			t.Errorf("entry %s/%s carries %q", l.UseCase, l.Region, l.Name)
		}
		got = append(got, l.UseCase+"/"+l.Region)
	}
	want := []string{"a/eu-west-1", "a/us-east-1", "b/ap-south-1", "b/us-east-1"}
	if !slices.Equal(got, want) {
		t.Fatalf("Entries order = %v; want %v", got, want)
	}
	if n := len(Manifest(nil).Entries()); n != 0 {
		t.Fatalf("nil manifest has %d entries", n)
	}
}

func TestEqual(t *testing.T) {
	a := bigManifest()
	b := bigManifest()
	if !a.Equal(b) {
		t.Fatal("two builds of the same manifest are not Equal")
	}
	e, _ := b.Get("notebook-cluster", "us-east-1")
	e.Public = !e.Public
	b.Set("notebook-cluster", "us-east-1", e)
	if a.Equal(b) {
		t.Fatal("manifests differing in one public flag are Equal")
	}
	empty := Manifest{"uc": {}}
	if !empty.Equal(nil) {
		t.Fatal("a use case without regions should count as absent")
	}
}
