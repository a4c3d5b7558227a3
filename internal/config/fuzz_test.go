package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that it returns either
// a Config or an Errors, and that a Config it returns is valid.
func FuzzParse(f *testing.F) {
	example, err := Example.ReadFile("example/kiln.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	for _, cases := range [][]errorCase{validationCases, decodeCases, fileCases, deploymentCases, destroyCases, variableCases} {
		for _, tc := range cases {
			f.Add([]byte(tc.doc))
		}
	}
	for _, doc := range validDocs {
		f.Add([]byte(doc))
	}
	f.Add([]byte(deploymentsDoc))
	f.Add([]byte(runnersYAML))
	f.Add([]byte(distYAML))

	// One directory with the files both the example and the test documents
	// refer to.
	dir := newProject(f)
	if err := os.CopyFS(dir, exampleFS(f)); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("kiln.yaml", data, dir)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v; want exactly one", c != nil, err)
		}
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T is not a non-empty Errors: %v", err, err)
			}
			// At most one line per line break of any kind, plus one.
			lines := 1
			for _, r := range string(data) {
				if r == '\n' || r == '\r' || r == 0x85 || r == 0x2028 || r == 0x2029 {
					lines++
				}
			}
			for _, e := range es {
				if e.File != "kiln.yaml" || e.Msg == "" || e.Line < 0 || e.Line > lines || e.Col < 0 {
					t.Fatalf("malformed error %#v", e)
				}
				_ = e.Error()
			}
			return
		}
		checkValid(t, c)
	})
}

// checkValid checks what every Config Parse returns guarantees.
func checkValid(t *testing.T, c *Config) {
	t.Helper()
	if !projectRE.MatchString(c.Project) {
		t.Errorf("project %q", c.Project)
	}
	if c.Backend.Type != "local" && c.Backend.Type != "aws" {
		t.Errorf("backend %q", c.Backend.Type)
	}
	if len(c.Regions) == 0 || !slices.Contains(c.Regions, c.BuildRegion) {
		t.Errorf("regions %q, build region %q", c.Regions, c.BuildRegion)
	}
	if !filepath.IsAbs(c.Backend.Local.Root) || !filepath.IsAbs(c.StateDir()) {
		t.Errorf("root %q, state %q not absolute", c.Backend.Local.Root, c.StateDir())
	}
	if len(c.Channels) == 0 {
		t.Error("no channels")
	}
	for _, ch := range c.ChannelNames() {
		if _, err := c.ManifestPath(ch); err != nil {
			t.Error(err)
		}
	}
	if len(c.UseCases) == 0 {
		t.Error("no use cases")
	}
	for name, u := range c.UseCases {
		if u == nil || u.Name != name || len(u.Architectures) == 0 || len(u.Tests) == 0 || len(c.TargetRegions(u)) == 0 {
			t.Errorf("use case %q: %+v", name, u)
			continue
		}
		for _, s := range u.Provision {
			if s.Kind() == "" {
				t.Errorf("use case %q has a step of no kind", name)
			}
		}
		for _, arch := range u.Architectures {
			for _, rule := range []string{c.Naming.Candidate, c.Naming.Release} {
				n := ExpandName(rule, sampleVars(u, arch))
				if _, bad := badImageNameChar(n); bad || len(n) > maxImageName {
					t.Errorf("rule %q makes the bad name %q", rule, n)
				}
			}
		}
	}
	for name, d := range c.Deployments {
		if d == nil || d.Name != name || c.CheckDeploymentName(name) != "" || len(d.UnitOrder()) != len(d.Units) || len(d.Units) == 0 {
			t.Errorf("deployment %q: %+v", name, d)
			continue
		}
		for un, u := range d.Units {
			if u.Name != un || u.Kind() == "" {
				t.Errorf("deployment %q unit %q: %+v", name, un, u)
			}
		}
	}
}
