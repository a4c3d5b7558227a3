package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode checks that Decode never panics, that every error it reports
// is well formed, and that whatever it accepts survives Encode→Decode
// unchanged, encodes idempotently, and means the same to encoding/json.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{"design.json", "big.json"} {
		data, err := readTestdataF(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, c := range decodeErrorCases() {
		f.Add([]byte(c.in))
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"uc":{"r1":` + compact + `}}`))
	f.Add([]byte(`{"a\u2028b":{"\ud800":{"architecture":"\u003c","deprecation_time":"","id":"","name":"\"","public":false}}}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode("fuzz.json", data)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned a manifest with its error")
			}
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error is not a non-empty Errors: %#v", err)
			}
			for _, e := range errs {
				if e.File != "fuzz.json" || e.Msg == "" || strings.Contains(e.Error(), "\n") {
					t.Fatalf("malformed error %#v", e)
				}
				if e.Line < 0 || e.Col < 0 || (e.Line == 0) != (e.Col == 0) {
					t.Fatalf("bad position in %q", e.Error())
				}
			}
			return
		}

		enc := m.Encode()
		back, err := Decode("fuzz.json", enc)
		if err != nil {
			t.Fatalf("Decode rejects Encode's output: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(m, back) {
			t.Fatalf("Encode→Decode changed the manifest:\n%#v\n%#v", m, back)
		}
		if again := back.Encode(); !bytes.Equal(again, enc) {
			t.Fatalf("Encode is not idempotent:\n%s\n%s", enc, again)
		}

		// encoding/json reads accepted input the same way, and writes the
		// same canonical bytes.
		var std map[string]map[string]Entry
		if err := json.Unmarshal(data, &std); err != nil {
			t.Fatalf("encoding/json rejects input Decode accepted: %v", err)
		}
		if !reflect.DeepEqual(map[string]map[string]Entry(m), std) {
			t.Fatalf("encoding/json reads it differently:\n%#v\n%#v", m, std)
		}
		var b bytes.Buffer
		je := json.NewEncoder(&b)
		je.SetEscapeHTML(false)
		je.SetIndent("", "  ")
		if err := je.Encode(std); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), enc) {
			t.Fatalf("Encode differs from encoding/json:\n%s\n%s", enc, b.Bytes())
		}

		// Validation must not panic either, and Check must agree with it.
		for _, r := range []Rules{AWSRules, LocalRules, {}} {
			verr := m.Validate("fuzz.json", r)
			_, cerr := Check("fuzz.json", data, r)
			if (verr == nil) != (cerr == nil) {
				t.Fatalf("Validate = %v but Check = %v", verr, cerr)
			}
		}
	})
}

// readTestdataF is readTestdata for a fuzz target's setup.
func readTestdataF(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", name))
}
