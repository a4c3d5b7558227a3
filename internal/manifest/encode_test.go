package manifest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// encodingJSON is what encoding/json makes of m with kiln's settings; the
// canonical encoding must agree with it byte for byte, since consumers may
// produce or compare the file with any JSON library.
func encodingJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEncodeDesignRoundTrip(t *testing.T) {
	data := readTestdata(t, "design.json")
	m, err := Decode("design.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Encode(); !bytes.Equal(got, data) {
		t.Fatalf("Decode→Encode changed DESIGN.md's manifest:\n%s\nwant:\n%s", got, data)
	}
}

func TestEncodeBigGolden(t *testing.T) {
	m := bigManifest()
	got := m.Encode()
	golden(t, "big.json", got)
	if want := encodingJSON(t, map[string]map[string]Entry(m)); !bytes.Equal(got, want) {
		t.Errorf("Encode differs from encoding/json:\n%s\nencoding/json:\n%s", got, want)
	}
	for _, s := range []string{"ubuntu <arm> & friends", "Jupyter für Datenküche", `notebook \"cluster\" \\ node`} {
		if !bytes.Contains(got, []byte(s)) {
			t.Errorf("encoding lacks %s verbatim", s)
		}
	}

	// The golden file itself decodes to the same manifest and re-encodes
	// to the same bytes.
	data := readTestdata(t, "big.json")
	back, err := Decode("big.json", data)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Equal(m) {
		t.Errorf("big.json decodes to a different manifest: %v", Diff(m, back))
	}
	if again := back.Encode(); !bytes.Equal(again, data) {
		t.Errorf("big.json is not canonical")
	}
	if err := back.Validate("big.json", AWSRules); err != nil {
		t.Errorf("big.json does not validate: %v", err)
	}
}

func TestEncodeCanonical(t *testing.T) {
	e := designEntry
	tests := []struct {
		name string
		m    Manifest
		want string
	}{
		{"nil", nil, "{}\n"},
		{"empty", Manifest{}, "{}\n"},
		{"only empty use cases", Manifest{"uc": {}, "other": nil}, "{}\n"},
		{"empty use case left out", Manifest{"a": {}, "b": {"r": e}},
			"{\n  \"b\": {\n    \"r\": {\n      \"architecture\": \"x86_64\",\n      \"deprecation_time\": \"\",\n      \"id\": \"ami-048b8191da9c5e202\",\n      \"name\": \"ubuntu\",\n      \"public\": true\n    }\n  }\n}\n"},
		{"keys sorted bytewise", Manifest{"b": {"z": e, "A": e}, "B": {"r": e}, "a": {"r": e}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.Encode()
			want := []byte(tt.want)
			if tt.want == "" {
				want = encodingJSON(t, map[string]map[string]Entry(tt.m))
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Encode:\n%s\nwant:\n%s", got, want)
			}
		})
	}
	// Sorting, concretely: uppercase sorts before lowercase.
	got := string(Manifest{"b": {"z": e, "A": e}, "B": {"r": e}, "a": {"r": e}}.Encode())
	order := []string{`"B"`, `"a"`, `"b"`, `"A"`, `"z"`}
	last := -1
	for _, k := range order {
		i := strings.Index(got, k+": {")
		if i <= last {
			t.Fatalf("key %s out of order in\n%s", k, got)
		}
		last = i
	}
}

func TestWriteStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `"quoted"`, `back\slash`, "<script>&amp;</script>",
		"tab\tnl\ncr\rbs\bff\f", "\x00\x01\x1f\x7f", "ünïcödé 日本 🚀",
		"\u2028\u2029", "bad \xff utf8 \xc3", "\ufffd", "/slash/",
	} {
		var b bytes.Buffer
		writeString(&b, s)
		want := encodingJSON(t, s)
		want = bytes.TrimSuffix(want, []byte("\n"))
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("writeString(%q) = %s; encoding/json gives %s", s, b.Bytes(), want)
		}
	}
}
