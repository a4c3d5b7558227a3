package distribute

import (
	"bytes"
	"maps"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeStreams checks that no index or products file makes the
// decoders panic, that every path they accept is one the tree may hold,
// and that what they accept encodes back to something they accept.
func FuzzDecodeStreams(f *testing.F) {
	w := &Products{ContentID: "demo:latest", DataType: DataType, Format: FormatProducts, Products: map[string]*Product{
		"demo:u:x86_64": {Arch: "x86_64", Versions: map[string]*Version{"20261121_093012": {
			Label: "1.0", Published: time.Date(2026, 11, 21, 9, 30, 12, 0, time.UTC).Format(time.RFC3339),
			Items: map[string]*Item{"vmdk": {FType: "vmdk", Path: "images/u/x86_64/1.0/u.vmdk", Size: 3, SHA256: strings.Repeat("a", 64)}},
		}}},
	}}
	f.Add(encodeJSON(w))
	f.Add(encodeJSON(&Index{Format: FormatIndex, Index: map[string]*IndexEntry{"demo:latest": {
		DataType: DataType, Format: FormatProducts, Path: "streams/v1/latest-0123456789ab.json", Products: []string{"demo:u:x86_64"},
		SHA256: strings.Repeat("b", 64), Size: 10,
	}}}))
	f.Add([]byte(`{"format":"index:1.0","index":{"a":{"datatype":"image-downloads","format":"products:1.0","path":"streams/v1/../../etc/passwd","products":[],"sha256":"` + strings.Repeat("c", 64) + `","size":1}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ix, err := DecodeIndex(data); err == nil {
			for _, e := range ix.Index {
				if checkPath(e.Path) != nil || !strings.HasPrefix(e.Path, "streams/v1/") {
					t.Fatalf("accepted index path %q", e.Path)
				}
			}
			if _, err := DecodeIndex(encodeJSON(ix)); err != nil {
				t.Fatalf("re-encoded index refused: %v", err)
			}
		}
		if p, err := DecodeProducts("p.json", data); err == nil {
			for _, l := range p.Files() {
				if checkPath(l.Item.Path) != nil || !strings.HasPrefix(l.Item.Path, "images/") || strings.Contains(l.Item.Path, "..") {
					t.Fatalf("accepted item path %q", l.Item.Path)
				}
			}
			if _, err := DecodeProducts("p.json", encodeJSON(p)); err != nil {
				t.Fatalf("re-encoded products refused: %v", err)
			}
		}
	})
}

// FuzzParseSums checks the SHA256SUMS parser: no panic, only plain names,
// and what it accepts survives EncodeSums.
func FuzzParseSums(f *testing.F) {
	f.Add(EncodeSums(map[string]string{"a.qcow2": strings.Repeat("0", 64), "SHA256SUMS.minisig": strings.Repeat("f", 64)}))
	f.Add([]byte(strings.Repeat("0", 64) + " *../x\n"))
	f.Add([]byte(strings.Repeat("0", 64) + "  \r\r\n"))
	f.Add([]byte(strings.Repeat("0", 64) + "  **x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sums, err := ParseSums(data)
		if err != nil {
			return
		}
		for name := range sums {
			if strings.ContainsFunc(name, notPlain) || name == ".." {
				t.Fatalf("accepted name %q", name)
			}
		}
		back, err := ParseSums(EncodeSums(sums))
		if err != nil || !maps.Equal(back, sums) {
			t.Fatalf("re-encoded sums: %v\nbefore %q\nafter  %q", err, sums, back)
		}
	})
}

// FuzzParseChangelog checks that no changelog makes the parser panic.
func FuzzParseChangelog(f *testing.F) {
	f.Add([]byte("# Changes\n\nVersion: 1.4.0\nDate: 2026-11-21\nCode name: Bluebird\n"))
	f.Add([]byte("- **Version:** `1.0`\n- **Codename**: x\nDate:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseChangelog(data)
		if err == nil && (strings.Contains(c.Version, "\n") || bytes.Contains([]byte(c.CodeName), []byte("\n"))) {
			t.Fatalf("a field spans lines: %+v", c)
		}
	})
}
