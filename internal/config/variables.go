package config

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Variable is a recipe variable. Shell provisioning steps get it as an
// environment variable of its name, Ansible steps as an extra var (in a
// file only the build can read, never on a command line), naming rules as
// {var.NAME}.
//
// A variable's value is its default, overridden by KILN_VAR_<name> in the
// environment, then by --var-file files, then by --var flags. A secret
// variable's value is read at run time from an environment variable (env,
// default KILN_VAR_<name>) or a file, never from kiln.yaml, --var or
// --var-file, and kiln keeps it out of everything it writes or prints.
type Variable struct {
	Name        string  `yaml:"-"`
	Description string  `yaml:"description"`
	Default     *string `yaml:"default"` // nil: none; the variable must be given
	Secret      bool    `yaml:"secret"`
	Env         string  `yaml:"env"`  // secret: the environment variable holding it
	File        string  `yaml:"file"` // secret: the file holding it, relative to Dir
}

// EnvName returns the environment variable a variable is read from:
// env for a secret that names one, else KILN_VAR_<name>.
func (v *Variable) EnvName() string {
	if v.Env != "" {
		return v.Env
	}
	return VarEnvPrefix + v.Name
}

// VarEnvPrefix starts the environment variables that set recipe variables.
const VarEnvPrefix = "KILN_VAR_"

// MinSecretLen is the shortest secret value kiln accepts: a shorter one
// would turn up inside unrelated text, where it can be neither kept out
// nor told apart.
const MinSecretLen = 8

// VariableNames returns the names of the variables, sorted.
func (c *Config) VariableNames() []string { return sortedKeys(c.Variables) }

// variableRE is a recipe variable's name (envNameRE, validate_ci.go, any
// environment variable's).
var variableRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// reservedVariables are names a variable may not take: shell steps get
// variables as environment variables, where these already mean something,
// and Ansible steps as extra vars, where these are Ansible's own.
var reservedVariables = []string{
	"BASH_ENV", "CDPATH", "DEBIAN_FRONTEND", "ENV", "HOME", "HOSTNAME", "IFS", "LANG",
	"LANGUAGE", "LD_LIBRARY_PATH", "LD_PRELOAD", "LOGNAME", "OLDPWD", "PATH", "PS1",
	"PS2", "PS4", "PWD", "SHELL", "TERM", "TMPDIR", "USER",
	"environment", "group_names", "groups", "hostvars", "inventory_hostname",
	"omit", "play_hosts", "playbook_dir", "role_path", "vars",
}

// checkVariables checks the variables section.
func (k *checker) checkVariables() {
	for _, name := range k.c.VariableNames() {
		v := k.c.Variables[name]
		p := joinPath("variables", name)
		switch {
		case !variableRE.MatchString(name):
			k.keyErrorf(p, "invalid variable name %q; use up to 64 letters, digits and underscores, not starting with a digit", name)
		case strings.HasPrefix(strings.ToUpper(name), "KILN_"):
			k.keyErrorf(p, "variable name %q starts with KILN_, which kiln keeps for itself", name)
		case strings.HasPrefix(name, "LC_") || strings.HasPrefix(strings.ToLower(name), "ansible_") || slices.Contains(reservedVariables, name):
			k.keyErrorf(p, "variable name %q is reserved: shell steps get variables as environment variables and Ansible steps as extra vars, where %s already has a meaning", name, name)
		}
		if !v.Secret {
			if v.Env != "" {
				k.errorf(p+".env", "env is for secret variables; set others with --var, --var-file or %s%s", VarEnvPrefix, name)
			}
			if v.File != "" {
				k.errorf(p+".file", "file is for secret variables; set others with --var, --var-file or %s%s", VarEnvPrefix, name)
			}
			continue
		}
		if v.Default != nil {
			k.errorf(p+".default", "a secret variable has no default: its value is read at run time (from env or file), never from kiln.yaml")
		}
		if v.Env != "" && v.File != "" {
			k.errorf(p, "secret variable sets both env and file; set one (default: the environment variable %s%s)", VarEnvPrefix, name)
		}
		if v.Env != "" && !envNameRE.MatchString(v.Env) {
			k.errorf(p+".env", "%q is not an environment variable name (letters, digits and underscores, not starting with a digit)", v.Env)
		}
		if strings.ContainsRune(v.File, 0) {
			k.errorf(p+".file", "the path contains a NUL byte")
		}
	}
}

// checkNameVars checks the {var.NAME} placeholders of a naming rule and
// returns the rule with them replaced by the variables' defaults (or
// nothing), for the checks that follow.
func (k *checker) checkNameVars(path, rule string) (string, bool) {
	out := rule
	for _, name := range nameVarRefs(rule) {
		v, ok := k.c.Variables[name]
		switch {
		case !ok:
			k.errorf(path, "placeholder {var.%s} in %q names no variable; declare it under variables", name, rule)
			return rule, false
		case v.Secret:
			k.errorf(path, "placeholder {var.%s} in %q names a secret variable; image names are public, so secrets may not appear in them", name, rule)
			return rule, false
		}
		def := ""
		if v.Default != nil {
			def = *v.Default
			if r, bad := badImageNameChar(def); bad {
				k.errorf(joinPath("variables", name)+".default", "%q is used in %s and has the character %q, which image names may not hold; allowed: %s", def, path, r, imageNameChars)
				return rule, false
			}
		}
		out = strings.ReplaceAll(out, "{var."+name+"}", def)
	}
	return out, true
}

// nameVarRefs returns the names of the variables a naming rule refers to
// as {var.NAME}, in order, each once.
func nameVarRefs(rule string) []string {
	var names []string
	rest := rule
	for {
		i := strings.Index(rest, "{var.")
		if i < 0 {
			return names
		}
		rest = rest[i+len("{var."):]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return names
		}
		if name := rest[:j]; !slices.Contains(names, name) {
			names = append(names, name)
		}
		rest = rest[j+1:]
	}
}

// NamingVariables returns the names of the variables the naming rules use,
// sorted: their values must be known to name images, and be allowed in
// image names.
func (c *Config) NamingVariables() []string {
	var names []string
	for _, rule := range []string{c.Naming.Candidate, c.Naming.Release} {
		names = append(names, nameVarRefs(rule)...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// CheckNameValue returns an error when value may not appear in image
// names.
func CheckNameValue(value string) error {
	if r, bad := badImageNameChar(value); bad {
		return fmt.Errorf("%q has the character %q, which image names may not hold; allowed: %s", value, r, imageNameChars)
	}
	return nil
}

// VarAssignment is one name: value line of a variables file.
type VarAssignment struct {
	Name, Value string
	Line, Col   int
}

// maxVarFile is the largest variables file kiln reads.
const maxVarFile = 1 << 20

// LoadVarFile reads a variables file (--var-file): a YAML mapping of
// variable names to values (strings, numbers or booleans, taken as
// written). Every problem is reported at once, as Errors with positions.
// Whether the names are declared is for the caller to check.
func LoadVarFile(path string) ([]VarAssignment, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: "cannot open: " + cause(err), err: err}}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxVarFile+1))
	if err != nil {
		return nil, Errors{{File: path, Msg: "cannot read: " + cause(err), err: err}}
	}
	return ParseVarFile(path, data)
}

// ParseVarFile is LoadVarFile on data already read; name is used in
// messages.
func ParseVarFile(name string, data []byte) ([]VarAssignment, error) {
	if len(data) > maxVarFile {
		return nil, Errors{{File: name, Msg: fmt.Sprintf("file is %d bytes; a variables file may be at most 1 MiB", len(data))}}
	}
	if e := checkText(name, data); e != nil {
		return nil, Errors{e}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil // no assignments
	}
	root, e := parseVarDocument(name, data)
	if e != nil {
		return nil, Errors{e}
	}
	var (
		errs Errors
		out  []VarAssignment
		seen = map[string]int{}
	)
	at := func(n *yaml.Node, field, format string, args ...any) {
		errs = append(errs, &Error{File: name, Line: n.Line, Col: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			at(k, "", "a key must be a variable name, found %s", describe(k))
			continue
		}
		if line, dup := seen[k.Value]; dup {
			at(k, k.Value, "duplicate variable; first set at line %d", line)
			continue
		}
		seen[k.Value] = k.Line
		if !variableRE.MatchString(k.Value) {
			at(k, k.Value, "invalid variable name %q; use letters, digits and underscores, not starting with a digit", k.Value)
			continue
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
			at(v, k.Value, "expected a value (a string, number or boolean), found %s", describe(v))
			continue
		}
		switch v.ShortTag() {
		case "!!str", "!!int", "!!float", "!!bool":
		default:
			at(v, k.Value, "expected a string, number or boolean, found %s", describe(v))
			continue
		}
		out = append(out, VarAssignment{Name: k.Value, Value: v.Value, Line: v.Line, Col: v.Column})
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return out, nil
}

// parseVarDocument parses one YAML document holding a flat mapping.
// Aliases and anchors are refused: a variables file is a plain list.
func parseVarDocument(name string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeNode(dec, &doc); err != nil {
		if err == io.EOF {
			return &yaml.Node{Kind: yaml.MappingNode}, nil
		}
		return nil, syntaxError(name, err)
	}
	var next yaml.Node
	switch err := decodeNode(dec, &next); {
	case err == io.EOF:
	case err != nil:
		return nil, syntaxError(name, err)
	default:
		return nil, &Error{File: name, Line: next.Line, Col: next.Column, Msg: "a second YAML document starts here; a variables file is one mapping"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &Error{File: name, Msg: "not a single YAML document"}
	}
	root := doc.Content[0]
	if isNull(root) {
		return &yaml.Node{Kind: yaml.MappingNode}, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: root.Line, Col: root.Column,
			Msg: fmt.Sprintf("the document is %s; expected a mapping of variable names to values", describe(root))}
	}
	return root, nil
}
