package vars

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// project writes a kiln.yaml with the given variables section and naming
// rule and loads it.
func project(t *testing.T, variables, release string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "t.sh"), []byte("#!/bin/sh\n"), 0o755)
	doc := "project: demo\nregions: [r1]\nnaming: {release: \"" + release + "\"}\nuse_cases:\n  u: {architectures: [x86_64], tests: [t.sh]}\nvariables:\n" + variables
	p := filepath.Join(dir, "kiln.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

const decl = `  flavour: {default: slim}
  release: {}
  token: {secret: true}
  key: {secret: true, file: key.txt}
  other: {secret: true, env: OTHER_TOKEN}
`

func TestPrecedence(t *testing.T) {
	c := project(t, decl, "{use_case}-{var.flavour}-{version}")
	os.WriteFile(filepath.Join(c.Dir, "key.txt"), []byte("file-secret-123\n"), 0o600)
	vf := filepath.Join(t.TempDir(), "vars.yml")
	os.WriteFile(vf, []byte("flavour: from-file\nrelease: \"13\"\n"), 0o644)

	s, err := Resolve(c, Sources{
		Flags: []string{"release=14", "flavour=from-flag"},
		Files: []string{vf},
		Getenv: env(map[string]string{
			"KILN_VAR_flavour": "from-env", "KILN_VAR_token": "env-secret-123",
			"OTHER_TOKEN": "other-secret-1", "KILN_VAR_other": "ignored-env-1",
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Provision()
	if err != nil {
		t.Fatal(err)
	}
	want := []cloud.Var{
		{Name: "flavour", Value: "from-flag"},
		{Name: "key", Value: "file-secret-123", Secret: true},
		{Name: "other", Value: "other-secret-1", Secret: true},
		{Name: "release", Value: "14"},
		{Name: "token", Value: "env-secret-123", Secret: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Provision() =\n%+v\nwant\n%+v", got, want)
	}
	if secrets := s.Secrets(); !slices.Equal(secrets, []string{"file-secret-123", "other-secret-1", "env-secret-123"}) {
		t.Errorf("Secrets() = %q", secrets)
	}
	names, err := s.Naming()
	if err != nil || len(names) != 1 || names["flavour"] != "from-flag" {
		t.Errorf("Naming() = %v, %v", names, err)
	}

	// Each source alone, lowest first.
	for _, tc := range []struct {
		src  Sources
		want string
	}{
		{Sources{Getenv: env(nil)}, "slim"},
		{Sources{Getenv: env(map[string]string{"KILN_VAR_flavour": "e"})}, "e"},
		{Sources{Getenv: env(map[string]string{"KILN_VAR_flavour": "e"}), Files: []string{vf}}, "from-file"},
		{Sources{Getenv: env(map[string]string{"KILN_VAR_flavour": "e"}), Files: []string{vf}, Flags: []string{"flavour=f", "flavour=g"}}, "g"},
	} {
		s, err := Resolve(c, tc.src)
		if err != nil {
			t.Fatal(err)
		}
		if names, err := s.Naming(); err != nil || names["flavour"] != tc.want {
			t.Errorf("%+v: flavour = %v, %v; want %s", tc.src, names, err, tc.want)
		}
	}
}

func TestBadInput(t *testing.T) {
	c := project(t, decl, "{use_case}-{version}")
	vf := filepath.Join(t.TempDir(), "vars.yml")
	os.WriteFile(vf, []byte("token: nope-nope-nope\nunknown: 1\n"), 0o644)
	_, err := Resolve(c, Sources{
		Flags:  []string{"novalue", "token=hunter2-hunter2", "nosuch=1"},
		Files:  []string{vf, filepath.Join(c.Dir, "missing.yml")},
		Getenv: env(nil),
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`--var-file ` + vf + `:1:8: variable "token" is secret: it is read from the environment variable KILN_VAR_token, never from the command line or a variables file`,
		`--var-file ` + vf + `:2:10: no variable "unknown" in ` + c.Path + ` (declared: flavour, key, other, release, token)`,
		`missing.yml: cannot open: no such file or directory`,
		`--var "novalue": want NAME=VALUE`,
		`--var token: variable "token" is secret`,
		`--var nosuch: no variable "nosuch"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "nope-nope") {
		t.Errorf("an error repeats a secret given on the command line:\n%v", err)
	}
}

// Missing values are errors only where the value is needed.
func TestMissingValues(t *testing.T) {
	c := project(t, decl, "{use_case}-{var.release}-{version}")
	os.WriteFile(filepath.Join(c.Dir, "key.txt"), []byte("short\n"), 0o600)
	s, err := Resolve(c, Sources{Getenv: env(map[string]string{"KILN_VAR_flavour": "a b+c"})})
	if err != nil {
		t.Fatalf("resolving without values failed up front: %v", err)
	}
	_, err = s.Provision()
	for _, want := range []string{
		"secret variable key from file " + filepath.Join(c.Dir, "key.txt") + " is 5 characters long; kiln needs at least 8",
		"secret variable other has no value: set the environment variable OTHER_TOKEN",
		"variable release has no value: give it with --var release=VALUE, in a --var-file, or as KILN_VAR_release in the environment",
		"secret variable token has no value: set the environment variable KILN_VAR_token",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Provision error lacks %q:\n%v", want, err)
		}
	}
	if len(s.Secrets()) != 0 {
		t.Errorf("secrets %q from nothing", s.Secrets())
	}
	_, err = s.Naming()
	if err == nil || !strings.Contains(err.Error(), "variable release has no value and the naming rules use it") {
		t.Errorf("Naming error: %v", err)
	}

	c = project(t, decl, "{use_case}-{var.flavour}-{version}")
	s, _ = Resolve(c, Sources{Getenv: env(map[string]string{"KILN_VAR_flavour": "a b+c"})})
	if _, err := s.Naming(); err == nil || !strings.Contains(err.Error(), `variable flavour (from KILN_VAR_flavour) is used in image names: "a b+c" has the character '+'`) {
		t.Errorf("Naming error: %v", err)
	}
}

func TestNoVariables(t *testing.T) {
	c := project(t, "", "{use_case}-{version}")
	s, err := Resolve(c, Sources{Getenv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.Provision(); err != nil || len(v) != 0 {
		t.Errorf("Provision() = %v, %v", v, err)
	}
	if _, err := Resolve(c, Sources{Flags: []string{"x=1"}}); err == nil || !strings.Contains(err.Error(), "none are declared") {
		t.Errorf("--var with no variables: %v", err)
	}
}
