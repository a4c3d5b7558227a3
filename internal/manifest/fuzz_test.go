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

// fuzzLayouts are the declared formats FuzzDecodeFormat reads with: the
// runner fleet's two (one read-only with two architectures) and a
// Terraform-style one with every other source.
func fuzzLayouts(f *testing.F) []*Layout {
	targets := runnerTargets("x86_64", "arm64")
	tf := &Format{
		Name: "tf",
		Key:  "{use_case}.{arch}",
		Fields: []Field{
			{Name: "arch", Source: SourceArch}, {Name: "dep", Source: SourceDeprecation}, {Name: "id", Source: SourceID},
			{Name: "key", Source: SourceKey}, {Name: "name", Source: SourceName}, {Name: "pub", Source: SourcePublic},
			{Name: "uc", Source: SourceUseCase},
		},
		Encoding: Encoding{Compact: true, Escape: EscapeHTML},
	}
	var out []*Layout
	for _, fm := range []*Format{runnersV1(), runnersV2(), tf} {
		if errs := fm.Check(); errs != nil {
			f.Fatal(errs)
		}
		l, errs := fm.Bind(targets)
		if errs != nil {
			f.Fatal(errs)
		}
		out = append(out, l)
	}
	return out
}

// FuzzDecodeFormat checks the decoder of declared formats as FuzzDecode
// checks kiln's: no panics, well-formed errors, and whatever it accepts
// encodes (where the layout is writable) to bytes that decode to the same
// manifest and encode again to the same bytes, which encoding/json reads.
func FuzzDecodeFormat(f *testing.F) {
	layouts := fuzzLayouts(f)
	for _, name := range []string{"runners-v1.json", "runners-v2.json"} {
		data, err := readTestdataF(filepath.Join("consumer", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"linux-ephemeral.amd64":{"r":{"arch":"x86_64","dep":"2027-01-01T00:00:00+01:00","id":"i","key":"linux-ephemeral.x86_64","name":"<&>","pub":false,"uc":"linux-ephemeral"}}}`))
	f.Add([]byte(`{"linux-amd64-ephemeral": {"us-east-1": {"id": "ami-1", "name": "ubuntu", "region": "us-west-2", "os": "mac", "arch": "sparc", "role": "", "deprecation_time": "x", "public": 1}}}`))
	f.Add([]byte(`{"linux-ephemeral": {"eu-west-1": {"architecture": "arm64"}}, "x": []}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range layouts {
			m, err := l.Decode("fuzz.json", data)
			if err != nil {
				if m != nil {
					t.Fatalf("%s: Decode returned a manifest with its error", l.f.Name)
				}
				var errs Errors
				if !errors.As(err, &errs) || len(errs) == 0 {
					t.Fatalf("%s: error is not a non-empty Errors: %#v", l.f.Name, err)
				}
				for _, e := range errs {
					if e.File != "fuzz.json" || e.Msg == "" || strings.Contains(e.Error(), "\n") {
						t.Fatalf("%s: malformed error %#v", l.f.Name, e)
					}
					if e.Line < 0 || e.Col < 0 || (e.Line == 0) != (e.Col == 0) {
						t.Fatalf("%s: bad position in %q", l.f.Name, e.Error())
					}
				}
				continue
			}
			for _, r := range []Rules{AWSRules, {}} {
				verr := l.Validate("fuzz.json", m, r)
				_, cerr := l.Check("fuzz.json", data, r)
				if (verr == nil) != (cerr == nil) {
					t.Fatalf("%s: Validate = %v but Check = %v", l.f.Name, verr, cerr)
				}
			}
			if !l.Writable() {
				continue
			}
			enc, err := l.Encode(m)
			if err != nil {
				t.Fatalf("%s: Encode of what Decode accepted: %v", l.f.Name, err)
			}
			back, err := l.Decode("fuzz.json", enc)
			if err != nil {
				t.Fatalf("%s: Decode rejects Encode's output: %v\n%s", l.f.Name, err, enc)
			}
			if !reflect.DeepEqual(m, back) {
				t.Fatalf("%s: Encode→Decode changed the manifest:\n%#v\n%#v", l.f.Name, m, back)
			}
			again, err := l.Encode(back)
			if err != nil || !bytes.Equal(again, enc) {
				t.Fatalf("%s: Encode is not idempotent: %v\n%s\n%s", l.f.Name, err, enc, again)
			}
			var std map[string]map[string]map[string]any
			if err := json.Unmarshal(enc, &std); err != nil {
				t.Fatalf("%s: encoding/json rejects Encode's output: %v", l.f.Name, err)
			}
			if len(DiffLayouts(m, l, back, l)) != 0 {
				t.Fatalf("%s: a manifest differs from its own round trip", l.f.Name)
			}
		}
	})
}
