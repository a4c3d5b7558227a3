// Package reporttest checks JSON documents against the schemas of the
// documents registered in package report: the schemas docs/schemas is
// generated from, compiled once per test binary.
package reporttest

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/kiln-images/kiln/internal/report"
)

var compiled sync.Map // schema name -> *jsonschema.Schema

// Validate fails t unless doc matches the schema registered as schema
// (e.g. kiln.deployments/v1); what names the document in the failure.
func Validate(t testing.TB, what, schema string, doc []byte) {
	t.Helper()
	s, ok := compiled.Load(schema)
	if !ok {
		k, found := report.Lookup(schema)
		if !found {
			t.Errorf("%s: schema %q is not registered in internal/report", what, schema)
			return
		}
		data, err := k.JSONSchema(nil)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err := c.AddResource(k.FileName(), raw); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile(k.FileName())
		if err != nil {
			t.Fatalf("%s: %v", schema, err)
		}
		s, _ = compiled.LoadOrStore(schema, sch)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(string(doc)))
	if err != nil {
		t.Errorf("%s: not JSON: %v\n%s", what, err, doc)
		return
	}
	if err := s.(*jsonschema.Schema).Validate(v); err != nil {
		t.Errorf("%s does not match %s: %v\n%s", what, schema, err, doc)
	}
}
