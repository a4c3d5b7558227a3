package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/pipeline"
)

// The schema files in docs/schemas are what go generate makes from the
// types today.
func TestSchemaFilesUpToDate(t *testing.T) {
	want, err := Schemas()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "docs", "schemas")
	for name, data := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("docs/schemas/%s is out of date (%v): run go generate ./internal/report", name, err)
		}
	}
	have, _ := filepath.Glob(filepath.Join(dir, "*.schema.json"))
	for _, f := range have {
		if _, ok := want[filepath.Base(f)]; !ok {
			t.Errorf("docs/schemas/%s belongs to no report: run go generate ./internal/report", filepath.Base(f))
		}
	}
}

// Every registered kind has one schema name of the form kiln.<command>/v1,
// a struct type with a schema field, and a schema a validator compiles.
func TestRegistry(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds() {
		if seen[k.Schema] {
			t.Errorf("%s registered twice", k.Schema)
		}
		seen[k.Schema] = true
		if !strings.HasPrefix(k.Schema, "kiln.") || !strings.HasSuffix(k.Schema, "/v1") {
			t.Errorf("%s: want kiln.<command>/v1", k.Schema)
		}
		if got, ok := Lookup(k.Schema); !ok || got.Type != k.Type {
			t.Errorf("Lookup(%s) = %v, %v", k.Schema, got, ok)
		}
		compile(t, k)
	}
	if _, ok := Lookup("kiln.nope/v1"); ok {
		t.Error("Lookup of an unknown schema succeeded")
	}
}

// compile returns the validator of k's schema.
func compile(t *testing.T, k Kind) *jsonschema.Schema {
	t.Helper()
	data, err := k.JSONSchema(nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(k.FileName(), doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(k.FileName())
	if err != nil {
		t.Fatalf("%s: %v", k.Schema, err)
	}
	return s
}

// Write gives [] and {} for nil lists and maps, also inside embedded and
// pointed-to reports, so a document validates against its schema.
func TestWriteFillsEmpty(t *testing.T) {
	rep := Release{Schema: SchemaRelease, ReleaseReport: pipeline.ReleaseReport{
		Publish: &pipeline.PublishReport{Channel: "latest"},
	}}
	var buf bytes.Buffer
	if err := Write(&buf, rep); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "null") {
		t.Fatalf("null in the report:\n%s", buf.String())
	}
	for _, want := range []string{`"changes": []`, `"regions": []`, `"exports": []`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("report lacks %s:\n%s", want, buf.String())
		}
	}
	validate(t, SchemaRelease, buf.Bytes())
}

func validate(t *testing.T, schema string, doc []byte) {
	t.Helper()
	k, ok := Lookup(schema)
	if !ok {
		t.Fatalf("no report %s", schema)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := compile(t, k).Validate(v); err != nil {
		t.Errorf("%s does not match its schema: %v\n%s", schema, err, doc)
	}
}

// A manifest change is snake_case with typed values: public is a boolean.
func TestManifestChangeJSON(t *testing.T) {
	a := manifest.Manifest{"u": {"r": {Architecture: "x86_64", ID: "img-1", Name: "n", Public: false}}}
	b := manifest.Manifest{"u": {"r": {Architecture: "x86_64", ID: "img-1", Name: "n", Public: true}}}
	var buf bytes.Buffer
	if err := Write(&buf, ManifestDiff{Schema: SchemaManifestDiff, A: "a", B: "b", Changes: manifest.Diff(a, b)}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Changes []map[string]any `json:"changes"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	c := got.Changes[0]
	if c["use_case"] != "u" || c["kind"] != "changed" || c["new"].(map[string]any)["public"] != true ||
		fmt.Sprint(c["fields"]) != "[public]" {
		t.Fatalf("change %v", c)
	}
	validate(t, SchemaManifestDiff, buf.Bytes())
}

// An error report lists each problem of an input file with its position.
func TestNewError(t *testing.T) {
	_, err := config.Parse("kiln.yaml", []byte("project: demo\nregions: [a]\nbuild_region: z\nuse_cases: {}\n"), t.TempDir())
	if err == nil {
		t.Fatal("bad config accepted")
	}
	e := NewError(fmt.Errorf("load: %w", errors.Join(err, errors.New("other"))), 2)
	if e.Schema != SchemaError || e.ExitCode != 2 || len(e.Problems) == 0 {
		t.Fatalf("error report %+v", e)
	}
	p := e.Problems[0]
	if p.File != "kiln.yaml" || p.Line == 0 || p.Field == "" || p.Message == "" {
		t.Errorf("problem %+v", p)
	}
	var buf bytes.Buffer
	if err := Write(&buf, e); err != nil {
		t.Fatal(err)
	}
	validate(t, SchemaError, buf.Bytes())

	e = NewError(errors.New("plain"), 1)
	buf.Reset()
	Write(&buf, e)
	if !strings.Contains(buf.String(), `"problems": []`) {
		t.Errorf("no problems should be []: %s", buf.String())
	}
}

// The kiln.yaml schema accepts the example kiln init writes and catches a
// misspelt setting, as an editor would show.
func TestConfigSchema(t *testing.T) {
	data, err := ConfigSchema(nil)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(ConfigSchemaFile, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(ConfigSchemaFile)
	if err != nil {
		t.Fatal(err)
	}
	example, err := config.Example.ReadFile("example/kiln.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(yamlToJSON(t, example)); err != nil {
		t.Errorf("the example kiln.yaml fails the schema: %v", err)
	}
	bad := strings.Replace(string(example), "build_region:", "build_regoin:", 1)
	bad = strings.Replace(bad, "min_interval: 7d", "min_interval: 7", 1)
	err = s.Validate(yamlToJSON(t, []byte(bad)))
	if err == nil || !strings.Contains(err.Error(), "build_regoin") || !strings.Contains(err.Error(), "min_interval") {
		t.Errorf("misspelt setting and unitless duration: %v", err)
	}
}

// yamlToJSON turns a YAML document into the value a JSON Schema validator
// checks, as editors' YAML language servers do.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}
