package manifest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// entryDoc returns a manifest with use case "uc" and region "r1" whose
// entry has the given field lines, one per line starting at line 4,
// column 7.
func entryDoc(fields ...string) string {
	return "{\n  \"uc\": {\n    \"r1\": {\n      " + strings.Join(fields, ",\n      ") + "\n    }\n  }\n}\n"
}

const (
	fArch = `"architecture": "x86_64"`
	fDep  = `"deprecation_time": ""`
	fID   = `"id": "ami-12345678"`
	fName = `"name": "n"`
	fPub  = `"public": true`
	// compact is a valid entry on one line.
	compact = `{"architecture": "x86_64", "deprecation_time": "", "id": "ami-12345678", "name": "n", "public": true}`
)

const dupNote = "; JSON readers disagree on which one wins"

// decodeErrorCase is an input Decode must reject, with the Error() of each
// *Error it must report, in order.
type decodeErrorCase struct {
	name string
	in   string
	want []string
}

// decodeErrorCases are shared with FuzzDecode as seeds.
func decodeErrorCases() []decodeErrorCase {
	return []decodeErrorCase{
		// The file as a whole.
		{"empty", "", []string{"f.json: file is empty; an empty manifest is {}"}},
		{"whitespace", " \n\t\r\n ", []string{"f.json: file contains only whitespace; an empty manifest is {}"}},
		{"not utf-8", "{\"u\xffc\": {}}", []string{"f.json:1:4: file is not valid UTF-8 (byte 0xff)"}},
		{"bom", "\xef\xbb\xbf{}", []string{"f.json:1:1: file starts with a UTF-8 byte order mark, which JSON does not allow; remove it"}},
		{"trailing object", "{} {}", []string{"f.json:1:4: unexpected data after the top-level object"}},
		{"trailing garbage", "{}x", []string{"f.json:1:3: unexpected data after the top-level object"}},
		{"trailing line", "{}\n\n]\n", []string{"f.json:3:1: unexpected data after the top-level object"}},
		{"syntax", `{"uc": {"r1": {"id": "a",}}}`, []string{
			"f.json:1:26: invalid JSON: invalid character '}' looking for beginning of object key string"}},
		{"bad escape in value", `{"uc": {"r1": {"id": "a\x"}}}`, []string{
			`f.json:1:25: invalid JSON: invalid character 'x' in string escape code`}},
		{"bad literal", "{\n  \"uc\": trux}", []string{
			`f.json:2:12: invalid JSON: invalid character 'x' in literal true (expecting 'e')`}},
		{"unquoted key", `{uc: 1}`, []string{
			`f.json:1:2: invalid JSON: invalid character 'u' looking for beginning of object key string`}},
		{"missing comma", `{"a": {} "b": {}}`, []string{
			`f.json:1:7: a: use case has no regions; remove it or add a region`,
			`f.json:1:10: invalid JSON: invalid character '"' after object key:value pair`}},
		{"newline in string", "{\"a\nb\": {}}", []string{
			`f.json:1:4: invalid JSON: invalid character '\n' in string literal`}},
		{"shape error before syntax error", `{"a": [], "b": {"r": 1,}}`, []string{
			`f.json:1:7: a: must be an object of regions, found array`,
			`f.json:1:22: b.r: must be an object with the fields architecture, deprecation_time, id, name, public; found number 1`,
			`f.json:1:24: invalid JSON: invalid character '}' looking for beginning of object key string`}},
		{"truncated object", `{"uc": {`, []string{"f.json:1:9: unexpected end of file"}},
		{"truncated string", `{"uc`, []string{"f.json:1:5: unexpected end of file"}},

		// Top level.
		{"top array", "[]", []string{"f.json:1:1: the top level must be an object of use cases, found array"}},
		{"top string", "\n  \"x\"", []string{`f.json:2:3: the top level must be an object of use cases, found string "x"`}},
		{"top null", "null", []string{"f.json:1:1: the top level must be an object of use cases, found null"}},
		{"top number", "5", []string{"f.json:1:1: the top level must be an object of use cases, found number 5"}},
		{"top bool", "true", []string{"f.json:1:1: the top level must be an object of use cases, found boolean true"}},

		// Use cases.
		{"use case array", `{"uc": []}`, []string{"f.json:1:8: uc: must be an object of regions, found array"}},
		{"use case null", `{"uc": null}`, []string{"f.json:1:8: uc: must be an object of regions, found null"}},
		{"use case without regions", `{"x": {}}`, []string{"f.json:1:7: x: use case has no regions; remove it or add a region"}},
		{"dotted key quoted", `{"a.b": []}`, []string{`f.json:1:9: "a.b": must be an object of regions, found array`}},
		{"empty key quoted", `{"": []}`, []string{`f.json:1:6: "": must be an object of regions, found array`}},
		{"deep nesting", `{"uc": ` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + "}", []string{
			"f.json:1:8: uc: must be an object of regions, found array",
			"f.json:1:8: value nested more than 64 levels deep"}},

		// Regions.
		{"region null", `{"uc": {"us-east-1": null}}`, []string{
			"f.json:1:22: uc.us-east-1: must be an object with the fields architecture, deprecation_time, id, name, public; found null"}},
		{"region string", `{"uc": {"us-east-1": "ami-1"}}`, []string{
			`f.json:1:22: uc.us-east-1: must be an object with the fields architecture, deprecation_time, id, name, public; found string "ami-1"`}},

		// Fields.
		{"unknown field", entryDoc(`"arch": "x86_64"`, fArch, fDep, fID, fName, fPub), []string{
			`f.json:4:7: uc.r1.arch: unknown field "arch"; the fields are architecture, deprecation_time, id, name, public`}},
		{"field in wrong case", entryDoc(fArch, fDep, `"ID": "ami-12345678"`, fName, fPub), []string{
			`f.json:6:7: uc.r1.ID: unknown field "ID" (did you mean "id"?); the fields are architecture, deprecation_time, id, name, public`,
			`f.json:3:11: uc.r1: missing field "id"`}},
		{"missing fields", entryDoc(fArch, fDep, fID), []string{
			`f.json:3:11: uc.r1: missing fields "name", "public"`}},
		{"public string", entryDoc(fArch, fDep, fID, fName, `"public": "yes"`), []string{
			`f.json:8:17: uc.r1.public: must be a boolean (true or false), found string "yes"`}},
		{"public number", entryDoc(fArch, fDep, fID, fName, `"public": 1`), []string{
			`f.json:8:17: uc.r1.public: must be a boolean (true or false), found number 1`}},
		{"public array", entryDoc(fArch, fDep, fID, fName, `"public": [true]`), []string{
			`f.json:8:17: uc.r1.public: must be a boolean (true or false), found array`}},
		{"public null", entryDoc(fArch, fDep, fID, fName, `"public": null`), []string{
			`f.json:8:17: uc.r1.public: must be a boolean (true or false), found null`}},
		{"id number", entryDoc(fArch, fDep, `"id": 5`, fName, fPub), []string{
			`f.json:6:13: uc.r1.id: must be a string, found number 5`}},
		{"name null", entryDoc(fArch, fDep, fID, `"name": null`, fPub), []string{
			`f.json:7:15: uc.r1.name: must be a string, found null`}},
		{"architecture object", entryDoc(`"architecture": {"a": [1, {"b": 2}]}`, fDep, fID, fName, fPub), []string{
			`f.json:4:23: uc.r1.architecture: must be a string, found object`}},
		{"deprecation_time bool", entryDoc(fArch, `"deprecation_time": false`, fID, fName, fPub), []string{
			`f.json:5:27: uc.r1.deprecation_time: must be a string, found boolean false`}},
		{"long value shortened", entryDoc(fArch, fDep, fID, fName, `"public": "`+strings.Repeat("y", 100)+`"`), []string{
			`f.json:8:17: uc.r1.public: must be a boolean (true or false), found string "` + strings.Repeat("y", 40) + `…"`}},
		{"several problems", entryDoc(`"arch": "x86_64"`, fDep, `"id": 5`, fName), []string{
			`f.json:4:7: uc.r1.arch: unknown field "arch"; the fields are architecture, deprecation_time, id, name, public`,
			`f.json:6:13: uc.r1.id: must be a string, found number 5`,
			`f.json:3:11: uc.r1: missing fields "architecture", "public"`}},

		// Duplicates at every level.
		{"duplicate field", entryDoc(fArch, fDep, fID, fName, fPub, `"name": "again"`), []string{
			`f.json:9:7: uc.r1.name: duplicate key (first at line 7, column 7)` + dupNote}},
		{"duplicate region and use case", "{\n  \"uc\": {\n    \"r1\": " + compact + ",\n    \"r1\": " + compact + "\n  },\n  \"uc\": {\n    \"r2\": " + compact + "\n  }\n}\n", []string{
			`f.json:4:5: uc.r1: duplicate key (first at line 3, column 5)` + dupNote,
			`f.json:6:3: uc: duplicate key (first at line 2, column 3)` + dupNote}},
		{"duplicate through escape", "{\n  \"a\": {\"r\": " + compact + "},\n  \"\\u0061\": {\"r\": " + compact + "}\n}", []string{
			`f.json:3:3: a: duplicate key (first at line 2, column 3)` + dupNote}},
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tt := range decodeErrorCases() {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode("f.json", []byte(tt.in))
			if err == nil {
				t.Fatalf("Decode accepted %q: %v", tt.in, m)
			}
			if m != nil {
				t.Errorf("Decode returned a manifest with its error: %v", m)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, not Errors: %v", err, err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if err.Error() != strings.Join(tt.want, "\n") {
				t.Errorf("Errors.Error() = %q", err.Error())
			}
			var one *Error
			if !errors.As(err, &one) || one != errs[0] {
				t.Errorf("errors.As does not find the first *Error")
			}
		})
	}
}

func TestDecodeTooBig(t *testing.T) {
	data := []byte("{}" + strings.Repeat(" ", MaxSize-1))
	_, err := Decode("f.json", data)
	want := "f.json: is 16777217 bytes, larger than the 16 MiB limit for manifests"
	if err == nil || err.Error() != want {
		t.Fatalf("Decode of %d bytes: %v; want %s", len(data), err, want)
	}
	// At exactly the limit it is fine.
	if _, err := Decode("f.json", data[:MaxSize]); err != nil {
		t.Fatalf("Decode of exactly MaxSize bytes: %v", err)
	}
}

func TestDecodeTooManyErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 150 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"uc` + strings.Repeat("x", i) + `": []`)
	}
	b.WriteString("}")
	_, err := Decode("f.json", []byte(b.String()))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %v; want Errors", err)
	}
	if len(errs) != maxErrors+1 {
		t.Fatalf("got %d errors; want %d", len(errs), maxErrors+1)
	}
	if last := errs[len(errs)-1].Error(); last != "f.json: more than 100 errors; stopping" {
		t.Fatalf("last error = %q", last)
	}
}

func TestDecodeValid(t *testing.T) {
	withEscapes := Manifest{}
	withEscapes.Set("a\"b", "r\u2028", Entry{Architecture: "arm64", ID: "x", Name: "<&>\t\\", DeprecationTime: "é"})
	tests := []struct {
		name string
		in   string
		want Manifest
	}{
		{"empty object", "{}", Manifest{}},
		{"empty object spaced", " \r\n{ }\n\n", Manifest{}},
		{"compact", `{"uc":{"r1":` + compact + `}}`, Manifest{"uc": {"r1": {Architecture: "x86_64", ID: "ami-12345678", Name: "n", Public: true}}}},
		{"design", string(readTestdata(t, "design.json")), Manifest{"aws-linux-ephemeral": {"us-east-1": designEntry}}},
		{"fields in any order", `{"uc":{"r1":{"public":false,"name":"n","id":"i","deprecation_time":"d","architecture":"a"}}}`,
			Manifest{"uc": {"r1": {Architecture: "a", DeprecationTime: "d", ID: "i", Name: "n"}}}},
		{"escapes", `{"a\"b":{"r\u2028":{"architecture":"arm64","deprecation_time":"\u00e9","id":"x","name":"\u003c&>\t\\","public":false}}}`, withEscapes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode("f.json", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if m == nil {
				t.Fatal("Decode returned a nil manifest")
			}
			if !m.Equal(tt.want) || len(m) != len(tt.want) {
				t.Fatalf("Decode = %#v; want %#v", m, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "stable.json")
	if err := os.WriteFile(good, readTestdata(t, "design.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := m.Get("aws-linux-ephemeral", "us-east-1"); !ok || e != designEntry {
		t.Fatalf("Load = %v", m)
	}

	missing := filepath.Join(dir, "nope.json")
	if _, err := Load(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Load of a missing file: %v; want an fs.ErrNotExist error naming %s", err, missing)
	}

	if _, err := Load(dir); err == nil || err.Error() != dir+": is a directory, not a manifest file" {
		t.Errorf("Load of a directory: %v", err)
	}

	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxSize+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || err.Error() != big+": is 16777217 bytes, larger than the 16 MiB limit for manifests" {
		t.Errorf("Load of a big file: %v", err)
	}

	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"uc": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || err.Error() != bad+":1:8: uc: use case has no regions; remove it or add a region" {
		t.Errorf("Load of a bad file: %v", err)
	}

	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(empty); err == nil || err.Error() != empty+": file is empty; an empty manifest is {}" {
		t.Errorf("Load of an empty file: %v", err)
	}
}

// A device that never ends, or a FIFO nobody writes to, is refused before
// it is read: it must neither fill memory nor hang kiln.
func TestLoadEndlessFile(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Fatalf("this test reads /dev/zero: %v", err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/zero", fifo} {
		done := make(chan error, 1)
		go func() { _, err := Load(p); done <- err }()
		select {
		case err := <-done:
			if err == nil || err.Error() != p+": is not a regular file (a pipe, socket or device), not a manifest file" {
				t.Errorf("Load(%s) = %v", p, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Load(%s) hangs", p)
		}
	}
}
