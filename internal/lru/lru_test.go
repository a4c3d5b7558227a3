package lru

import "testing"

func TestMapEvictsLeastRecentlyUsed(t *testing.T) {
	m := New[string, int](3)
	for i, k := range []string{"a", "b", "c"} {
		if m.Put(k, i) {
			t.Fatalf("evicted while filling at %s", k)
		}
	}
	m.Get("a") // b is now the least recently used
	if !m.Put("d", 3) {
		t.Fatal("a full map took a fourth entry without evicting")
	}
	if _, ok := m.Get("b"); ok {
		t.Error("b should have been evicted")
	}
	for _, k := range []string{"a", "c", "d"} {
		if _, ok := m.Get(k); !ok {
			t.Errorf("%s was evicted", k)
		}
	}
	m.Put("a", 10) // an update does not grow the map
	if v, _ := m.Get("a"); v != 10 || m.Len() != 3 {
		t.Errorf("update: a=%d len=%d", v, m.Len())
	}
	m.Delete("a")
	m.Delete("nope")
	if m.Len() != 2 {
		t.Errorf("len after delete %d", m.Len())
	}
	for i := range 1000 {
		m.Put(string(rune('A'+i%50))+string(rune(i)), i)
	}
	if m.Len() != 3 {
		t.Errorf("len %d after many puts, want the bound 3", m.Len())
	}
}
