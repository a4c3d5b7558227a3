package report

import (
	"encoding/json"
	"fmt"
	"path"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
)

// SchemaBaseURL is where the generated schemas are published: the files
// under docs/schemas of kiln's repository. Each schema's $id is this plus
// its file name.
const SchemaBaseURL = "https://raw.githubusercontent.com/kiln-images/kiln/main/docs/schemas/"

// FileName is the file in docs/schemas that holds k's JSON Schema:
// kiln.manifest-diff/v1 → kiln.manifest-diff.v1.schema.json.
func (k Kind) FileName() string {
	return strings.ReplaceAll(k.Schema, "/", ".") + ".schema.json"
}

// ConfigSchemaFile is the file in docs/schemas that holds kiln.yaml's JSON
// Schema.
const ConfigSchemaFile = "kiln.yaml.schema.json"

// sources is where the Go comments that become the schemas' descriptions
// are read from, relative to this package's directory (go generate and go
// test run there).
var sources = []string{"../report", "../pipeline", "../assets", "../drift", "../journal", "../manifest", "../cloud", "../schedule", "../ownership", "../gates"}

// thisPackage is this package's import path; AddGoComments resolves the
// relative source directories against it.
const thisPackage = "github.com/kiln-images/kiln/internal/report"

// JSONSchema generates k's JSON Schema from its Go type. comments (from
// Comments; nil for none) become the descriptions.
func (k Kind) JSONSchema(comments map[string]string) ([]byte, error) {
	r := &jsonschema.Reflector{
		ExpandedStruct: true,
		Namer:          qualifiedName,
		Mapper:         mapType,
		CommentMap:     comments,
	}
	s := r.ReflectFromType(k.Type)
	s.ID = jsonschema.ID(SchemaBaseURL + k.FileName())
	s.Title = k.Schema
	s.Description = fmt.Sprintf("The JSON document %s prints with -o json (on %s).", k.Command, stream(k))
	if p, ok := s.Properties.Get("schema"); ok {
		p.Const = k.Schema
		p.Description = "The document's schema name."
	} else {
		return nil, fmt.Errorf("report %s: type %s has no schema field", k.Schema, k.Type)
	}
	return encode(s)
}

// qualifiedName names a type's definition with its package, so that
// pipeline.Run and journal.Run stay apart.
func qualifiedName(t reflect.Type) string {
	if t.Name() == "" {
		return "" // no definition of its own
	}
	return path.Base(t.PkgPath()) + "." + t.Name()
}

func stream(k Kind) string {
	if k.Stderr {
		return "stderr"
	}
	return "stdout"
}

// ConfigSchema generates the JSON Schema of kiln.yaml from the config types,
// for editors to complete and check the file. It describes the shape; the
// rules across fields (a build region among the regions, a script that
// exists) are kiln validate's.
func ConfigSchema(comments map[string]string) ([]byte, error) {
	r := &jsonschema.Reflector{
		ExpandedStruct:             true,
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true, // every setting has a default but these
		Mapper:                     mapType,
		CommentMap:                 comments,
	}
	s := r.ReflectFromType(reflect.TypeFor[config.Config]())
	s.ID = jsonschema.ID(SchemaBaseURL + ConfigSchemaFile)
	s.Title = "kiln.yaml"
	s.Description = "A kiln project: what kiln builds, tests and publishes, and where. `kiln init` writes a commented example; `kiln validate` checks everything this schema cannot."
	s.Required = []string{"project", "regions", "use_cases"}
	enum := func(def, prop string, values ...any) error {
		d, ok := s.Definitions[def]
		if !ok {
			return fmt.Errorf("kiln.yaml schema: no definition %s", def)
		}
		p, ok := d.Properties.Get(prop)
		if !ok {
			return fmt.Errorf("kiln.yaml schema: %s has no property %s", def, prop)
		}
		p = p.AnyOf[0] // nullable's wrapper
		if p.Type == "array" {
			p = p.Items
		}
		p.Enum = values
		return nil
	}
	// kiln.yaml may leave any setting empty (null: the default), as the
	// example does with a section whose settings are all comments.
	nullable(s)
	for _, d := range s.Definitions {
		nullable(d)
	}
	for _, e := range []struct {
		def, prop string
		values    []any
	}{
		{"Backend", "type", []any{"local", "aws"}},
		{"LocalBackend", "accel", []any{"auto", "kvm", "tcg"}},
		{"UseCase", "architectures", []any{"x86_64", "arm64"}},
	} {
		if err := enum(e.def, e.prop, e.values...); err != nil {
			return nil, err
		}
	}
	return encode(s)
}

// nullable lets each property of s also be null.
func nullable(s *jsonschema.Schema) {
	if s.Properties == nil {
		return
	}
	for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
		p := pair.Value
		pair.Value = &jsonschema.Schema{
			AnyOf:       []*jsonschema.Schema{p, {Type: "null"}},
			Description: p.Description,
		}
	}
}

// mapType gives the schemas of types whose JSON (or YAML) form is not their
// Go shape.
func mapType(t reflect.Type) *jsonschema.Schema {
	switch t {
	case reflect.TypeFor[config.Duration]():
		return &jsonschema.Schema{
			Type:        "string",
			Pattern:     `^-?(0|([0-9]+w)?([0-9]+d)?([0-9]+(\.[0-9]+)?(h|m|s|ms|us|µs|ns))*)$`,
			Description: `A duration in kiln's notation: a number and a unit, s, m, h, d (days) or w (weeks), e.g. "90s", "36h", "7d"; units may be combined ("1d12h").`,
			Examples:    []any{"7d", "36h", "90s"},
		}
	case reflect.TypeFor[config.Size]():
		return &jsonschema.Schema{
			OneOf: []*jsonschema.Schema{
				{Type: "integer", Minimum: "0"},
				{Type: "string", Pattern: `^[0-9]+ ?([KkMmGgTt]([Ii][Bb]|[Bb])?|[Bb])?$`},
			},
			Description: `A size in bytes, or with a unit: "2GiB", "512MiB", "2G" (binary), "2GB" (decimal).`,
			Examples:    []any{"2GiB", "512MiB"},
		}
	case reflect.TypeFor[manifest.FieldChange]():
		return &jsonschema.Schema{
			Type:        "string",
			Description: "The name of a manifest field that differs; its old and new values are in the change's old and new entries.",
		}
	}
	return nil
}

// Comments reads the Go comments of the report and config types from the
// source, for the schemas' descriptions. The source directories are
// relative to this package's, which must be the working directory (as it
// is for go generate and go test).
func Comments() (map[string]string, error) {
	r := &jsonschema.Reflector{}
	for _, d := range append(sources, "../config") {
		if err := r.AddGoComments(thisPackage, d); err != nil {
			return nil, fmt.Errorf("read the Go comments of %s: %w", d, err)
		}
	}
	return r.CommentMap, nil
}

func encode(s *jsonschema.Schema) ([]byte, error) {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
