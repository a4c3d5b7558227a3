// Package vars resolves a project's recipe variables for one command: the
// defaults in kiln.yaml, KILN_VAR_<name> in the environment, --var-file
// files and --var flags, in that order of precedence, and the values of
// secret variables from their environment variable or file.
//
// Bad input (a --var naming no variable, a secret given on the command
// line) is an error at once. A variable without a value, or a secret that
// cannot be read, is an error only where its value is needed: a build, or
// a name that uses it.
package vars

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// Sources are where values come from besides kiln.yaml.
type Sources struct {
	Flags  []string            // --var name=value, in the order given
	Files  []string            // --var-file paths, in the order given
	Getenv func(string) string // nil: os.Getenv
}

// value is one variable's value and where it came from.
type value struct {
	v      *config.Variable
	value  string
	set    bool
	source string // what set it, for messages (never the value)
	err    error  // a secret that could not be read
}

// Set is the resolved variables of a project.
type Set struct {
	names  []string
	values map[string]*value
	naming []string // the variables naming rules use
}

// maxSecretFile bounds a secret file: a token or a key, not a disk image.
const maxSecretFile = 64 << 10

// Resolve resolves c's variables from src.
func Resolve(c *config.Config, src Sources) (*Set, error) {
	getenv := src.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	s := &Set{names: c.VariableNames(), values: map[string]*value{}, naming: c.NamingVariables()}
	for _, name := range s.names {
		v := c.Variables[name]
		val := &value{v: v}
		s.values[name] = val
		if v.Secret {
			val.value, val.source, val.err = readSecret(c, v, getenv)
			val.set = val.err == nil
			continue
		}
		if v.Default != nil {
			val.value, val.set, val.source = *v.Default, true, "its default"
		}
		if e, ok := lookup(getenv, v.EnvName()); ok {
			val.value, val.set, val.source = e, true, v.EnvName()
		}
	}
	var errs []error
	assign := func(where, name, val string) {
		v, ok := s.values[name]
		switch {
		case !ok:
			declared := "none are declared"
			if len(s.names) > 0 {
				declared = "declared: " + strings.Join(s.names, ", ")
			}
			errs = append(errs, fmt.Errorf("%s: no variable %q in %s (%s)", where, name, c.Path, declared))
		case v.v.Secret:
			errs = append(errs, fmt.Errorf("%s: variable %q is secret: it is read from %s, never from the command line or a variables file, which shell history and ps show or which get committed",
				where, name, secretSource(v.v)))
		default:
			v.value, v.set, v.source = val, true, where
		}
	}
	for _, path := range src.Files {
		as, err := config.LoadVarFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range as {
			assign(fmt.Sprintf("--var-file %s:%d:%d", path, a.Line, a.Col), a.Name, a.Value)
		}
	}
	for _, f := range src.Flags {
		name, val, ok := strings.Cut(f, "=")
		if !ok || name == "" {
			errs = append(errs, fmt.Errorf("--var %q: want NAME=VALUE", f))
			continue
		}
		assign("--var "+name, name, val)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func secretSource(v *config.Variable) string {
	if v.File != "" {
		return "the file " + v.File
	}
	return "the environment variable " + v.EnvName()
}

// readSecret reads a secret's value from its file or environment variable.
func readSecret(c *config.Config, v *config.Variable, getenv func(string) string) (string, string, error) {
	var val, source string
	if v.File != "" {
		path := c.Resolve(v.File)
		source = "file " + path
		f, err := os.Open(path)
		if err != nil {
			return "", source, fmt.Errorf("secret variable %s: read %s: %w", v.Name, path, err)
		}
		data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
		f.Close()
		if err != nil {
			return "", source, fmt.Errorf("secret variable %s: read %s: %w", v.Name, path, err)
		}
		if len(data) > maxSecretFile {
			return "", source, fmt.Errorf("secret variable %s: %s is over %d KiB; a secret is a token or a key", v.Name, path, maxSecretFile>>10)
		}
		val = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	} else {
		source = "environment variable " + v.EnvName()
		var ok bool
		if val, ok = lookup(getenv, v.EnvName()); !ok {
			return "", source, fmt.Errorf("secret variable %s has no value: set the environment variable %s", v.Name, v.EnvName())
		}
	}
	if len(val) < config.MinSecretLen {
		return "", source, fmt.Errorf("secret variable %s from %s is %d characters long; kiln needs at least %d to keep it out of its output (a shorter one would turn up inside other text)",
			v.Name, source, len(val), config.MinSecretLen)
	}
	return val, source, nil
}

// Secrets returns the values of the secret variables that could be read,
// for masking.
func (s *Set) Secrets() []string {
	var out []string
	for _, name := range s.names {
		if v := s.values[name]; v.v.Secret && v.set {
			out = append(out, v.value)
		}
	}
	return out
}

// Provision returns every variable with its value, for a build. The error
// names each variable that has none and each secret that could not be
// read.
func (s *Set) Provision() ([]cloud.Var, error) {
	var (
		out  []cloud.Var
		errs []error
	)
	for _, name := range s.names {
		v := s.values[name]
		switch {
		case v.err != nil:
			errs = append(errs, v.err)
		case !v.set:
			errs = append(errs, fmt.Errorf("variable %s has no value: give it with --var %s=VALUE, in a --var-file, or as %s in the environment, or set a default in kiln.yaml",
				name, name, v.v.EnvName()))
		default:
			out = append(out, cloud.Var{Name: name, Value: v.value, Secret: v.v.Secret})
		}
	}
	return out, errors.Join(errs...)
}

// Naming returns the values of the variables the naming rules use. The
// error names each that has no value or one image names may not hold.
func (s *Set) Naming() (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, name := range s.naming {
		v, ok := s.values[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("naming uses variable %s, which is not declared", name))
		case !v.set:
			errs = append(errs, fmt.Errorf("variable %s has no value and the naming rules use it: give it with --var %s=VALUE, in a --var-file, or as %s in the environment",
				name, name, v.v.EnvName()))
		default:
			if err := config.CheckNameValue(v.value); err != nil {
				errs = append(errs, fmt.Errorf("variable %s (from %s) is used in image names: %w", name, v.source, err))
				continue
			}
			out[name] = v.value
		}
	}
	return out, errors.Join(errs...)
}
