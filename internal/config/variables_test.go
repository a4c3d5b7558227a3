package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// variableCases cover the rules of variables, build and the aws staging
// settings. They also seed FuzzParse.
var variableCases = []errorCase{
	{"variable name", localBase + "variables: {9lives: {default: x}}\n", []string{
		`kiln.yaml:7:13: variables.9lives: invalid variable name "9lives"; use up to 64 letters, digits and underscores, not starting with a digit`}},
	{"variable KILN_ prefix", localBase + "variables: {kiln_x: {default: x}}\n", []string{
		`kiln.yaml:7:13: variables.kiln_x: variable name "kiln_x" starts with KILN_, which kiln keeps for itself`}},
	{"variable reserved", localBase + "variables: {PATH: {default: /bin}, ansible_user: {}}\n", []string{
		`kiln.yaml:7:13: variables.PATH: variable name "PATH" is reserved: shell steps get variables as environment variables and Ansible steps as extra vars, where PATH already has a meaning`,
		`kiln.yaml:7:36: variables.ansible_user: variable name "ansible_user" is reserved: shell steps get variables as environment variables and Ansible steps as extra vars, where ansible_user already has a meaning`}},
	{"secret with default", localBase + "variables:\n  token: {secret: true, default: hunter22}\n", []string{
		`kiln.yaml:8:34: variables.token.default: a secret variable has no default: its value is read at run time (from env or file), never from kiln.yaml`}},
	{"secret env and file", localBase + "variables:\n  token: {secret: true, env: TOKEN, file: /run/token}\n", []string{
		`kiln.yaml:8:10: variables.token: secret variable sets both env and file; set one (default: the environment variable KILN_VAR_token)`}},
	{"secret env name", localBase + "variables:\n  token: {secret: true, env: 1TOKEN}\n", []string{
		`kiln.yaml:8:30: variables.token.env: "1TOKEN" is not an environment variable name (letters, digits and underscores, not starting with a digit)`}},
	{"env on a plain variable", localBase + "variables:\n  release: {env: RELEASE, file: x}\n", []string{
		`kiln.yaml:8:18: variables.release.env: env is for secret variables; set others with --var, --var-file or KILN_VAR_release`,
		`kiln.yaml:8:33: variables.release.file: file is for secret variables; set others with --var, --var-file or KILN_VAR_release`}},
	{"naming: unknown variable", localBase + "naming: {release: \"{use_case}-{var.flavour}-{version}\"}\n", []string{
		`kiln.yaml:7:19: naming.release: placeholder {var.flavour} in "{use_case}-{var.flavour}-{version}" names no variable; declare it under variables`}},
	{"naming: secret variable", localBase + "naming: {release: \"{use_case}-{var.token}-{version}\"}\nvariables: {token: {secret: true}}\n", []string{
		`kiln.yaml:7:19: naming.release: placeholder {var.token} in "{use_case}-{var.token}-{version}" names a secret variable; image names are public, so secrets may not appear in them`}},
	{"naming: bad default", localBase + "naming: {release: \"{use_case}-{var.flavour}-{version}\"}\nvariables: {flavour: {default: \"a+b\"}}\n", []string{
		`kiln.yaml:8:32: variables.flavour.default: "a+b" is used in naming.release and has the character '+', which image names may not hold; allowed: letters, digits, spaces and ( ) [ ] . / - _ ' @`}},

	{"build on local", localBase + "    build: {method: upload, disk: x.raw}\n", []string{
		`kiln.yaml:7:21: use_cases.u.build.method: build.method is for the aws backend; the local backend builds every disk on this machine`,
		`kiln.yaml:7:35: use_cases.u.build.disk: build.disk is for the aws backend (with method upload)`}},
	{"build method unknown", awsBase + "    build: {method: packer}\n", []string{
		`kiln.yaml:9:21: use_cases.u.build.method: unknown build method "packer"; allowed: instance (provision a temporary instance), upload (build the disk here and upload it)`}},
	{"build disk with instance", awsBase + "    build: {disk: f.txt}\n", []string{
		`kiln.yaml:9:19: use_cases.u.build.disk: build.disk needs method upload; with method instance the disk is the build instance's`}},
	{"upload keeps an ami", awsBase + "    build: {method: upload}\n", []string{
		`kiln.yaml:7:17: use_cases.u.base.ami: method upload builds from base.suite and base.packages on this machine; ami is for method instance`}},
	{"upload from packages", awsBaseWith("    base: {packages: [curl]}") + "    build: {method: upload}\n", nil},
	{"upload arm64", strings.Replace(awsBaseWith("    base: {packages: [curl]}"), "[x86_64]", "[arm64]", 1) + "    build: {method: upload}\n", []string{
		`kiln.yaml:9:21: use_cases.u.build.method: method upload builds the disk with the local builder, which makes x86_64 disks only (architecture arm64); use method instance or give build.disk`}},
	{"upload disk with recipe", awsBase + "    build: {method: upload, disk: f.txt}\n    provision: [{shell: s.sh}]\n", []string{
		`kiln.yaml:9:35: use_cases.u.build.disk: a given disk is uploaded as it is; remove provision and base from the use case`}},
	{"upload disk missing", awsBaseWith("") + "    build: {method: upload, disk: none.raw}\n", []string{
		`kiln.yaml:9:35: use_cases.u.build.disk: disk "none.raw" not found: DIR/none.raw does not exist`}},
	{"bucket name", awsWith(`backend: {type: aws, aws: {allowed_accounts: ["123456789012"], bucket: B, upload_concurrency: 0}}`), []string{
		`kiln.yaml:2:72: backend.aws.bucket: "B" is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and dashes)`,
		`kiln.yaml:2:95: backend.aws.upload_concurrency: 0 is out of range; allowed: 1 to 1024`}},
	{"secret needs a bucket", awsBase + "variables: {token: {secret: true}}\n", []string{
		`kiln.yaml:9:29: variables.token.secret: use case "u" builds on an instance, which gets its provisioning from user data unless backend.aws.bucket stages it; user data is readable by anyone who may describe the instance, so secret variables need backend.aws.bucket`}},
}

func TestVariableValidation(t *testing.T) {
	dir := newProject(t)
	for _, tc := range variableCases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == nil {
				if _, err := Parse("kiln.yaml", []byte(tc.doc), dir); err != nil {
					t.Fatalf("document:\n%s\nerrors:\n%v", tc.doc, err)
				}
				return
			}
			wantErrors(t, tc.doc, dir, tc.want)
		})
	}
}

func TestVariablesAndBuildDecode(t *testing.T) {
	dir := newProject(t)
	doc := strings.Replace(awsBase, "    base: {ami: ami-12345678}\n", "    base: {packages: [curl]}\n    build: {method: upload}\n", 1) +
		`  v:
    architectures: [x86_64]
    base: {ami: ami-12345678}
    tests: [t.sh]
naming: {release: "{use_case}-{var.flavour}-{version}"}
variables:
  flavour: {description: the image's flavour, default: 12}
  empty:
  token: {secret: true, file: secrets/token}
`
	doc = strings.Replace(doc, `aws: {allowed_accounts: ["123456789012"]}`, `aws: {allowed_accounts: ["123456789012"], bucket: kiln-demo}`, 1)
	c, err := Parse("kiln.yaml", []byte(doc), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.VariableNames(); !slices.Equal(got, []string{"empty", "flavour", "token"}) {
		t.Errorf("variables %v", got)
	}
	f := c.Variables["flavour"]
	if f.Name != "flavour" || f.Default == nil || *f.Default != "12" || f.Secret || f.EnvName() != "KILN_VAR_flavour" {
		t.Errorf("flavour = %+v", f)
	}
	if e := c.Variables["empty"]; e == nil || e.Default != nil || e.Name != "empty" {
		t.Errorf("empty = %+v", e)
	}
	if tok := c.Variables["token"]; !tok.Secret || tok.File != "secrets/token" || tok.EnvName() != "KILN_VAR_token" {
		t.Errorf("token = %+v", tok)
	}
	if got := c.NamingVariables(); !slices.Equal(got, []string{"flavour"}) {
		t.Errorf("naming variables %v", got)
	}
	u, v := c.UseCases["u"], c.UseCases["v"]
	if u.Build.Method != BuildUpload || u.Base.Suite != "bookworm" || v.Build.Method != BuildInstance || v.Base.Suite != "" {
		t.Errorf("builds: u %+v %+v, v %+v", u.Build, u.Base, v.Build)
	}
	if c.Backend.AWS.Bucket != "kiln-demo" || c.Backend.AWS.UploadConcurrency != 64 {
		t.Errorf("aws %+v", c.Backend.AWS)
	}
	name := ExpandName(c.Naming.Release, NameVars{UseCase: "u", Version: "1", Vars: map[string]string{"flavour": "slim"}})
	if name != "u-slim-1" {
		t.Errorf("release name %q", name)
	}
}

func TestParseVarFile(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []VarAssignment
		errs []string
	}{
		{"empty", "", nil, nil},
		{"comment only", "# nothing\n", nil, nil},
		{"values as written", "a: one\nb: 0644\nc: true\nd: \"x: y\"\n", []VarAssignment{
			{"a", "one", 1, 4}, {"b", "0644", 2, 4}, {"c", "true", 3, 4}, {"d", "x: y", 4, 4}}, nil},
		{"not a mapping", "- a\n", nil, []string{"vars.yml:1:1: the document is a list; expected a mapping of variable names to values"}},
		{"problems", "a: [1]\nb:\n9x: 1\na: 2\nc: *x\n", nil, []string{
			`vars.yml: invalid YAML: unknown anchor 'x' referenced`}},
		{"every problem at once", "a: [1]\nb:\n9x: 1\na: 2\n", nil, []string{
			"vars.yml:1:4: a: expected a value (a string, number or boolean), found a list",
			"vars.yml:2:3: b: expected a value (a string, number or boolean), found nothing",
			`vars.yml:3:1: 9x: invalid variable name "9x"; use letters, digits and underscores, not starting with a digit`,
			"vars.yml:4:1: a: duplicate variable; first set at line 1"}},
		{"two documents", "a: 1\n---\nb: 2\n", nil, []string{"vars.yml:2:1: a second YAML document starts here; a variables file is one mapping"}},
		{"control character", "a: \x01\n", nil, []string{"vars.yml:1:4: control character U+0001 is not allowed in YAML"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVarFile("vars.yml", []byte(tt.doc))
			if tt.errs != nil {
				if es := errorStrings(t, err); !slices.Equal(es, tt.errs) {
					t.Errorf("errors\n  %s\nwant\n  %s", strings.Join(es, "\n  "), strings.Join(tt.errs, "\n  "))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := LoadVarFile(filepath.Join(t.TempDir(), "none.yml")); err == nil || !strings.Contains(err.Error(), "none.yml: cannot open: no such file or directory") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.yml")
	if err := os.WriteFile(big, []byte("a: "+strings.Repeat("x", maxVarFile)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadVarFile(big); err == nil || !strings.Contains(err.Error(), "at most 1 MiB") {
		t.Errorf("big file: %v", err)
	}
}

// FuzzVarFile checks that no input makes ParseVarFile panic, and that it
// returns assignments or positioned errors, never both.
func FuzzVarFile(f *testing.F) {
	for _, seed := range []string{"", "a: 1\n", "a: [1]\nb:\n9x: 1\na: 2\n", "- a\n", "a: &x 1\nb: *x\n", "<<: {a: 1}\n", "a: 1\n---\nb: 2\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseVarFile("vars.yml", data)
		if err != nil {
			if len(got) > 0 {
				t.Fatalf("assignments %v and error %v", got, err)
			}
			es := errorStrings(t, err)
			for _, e := range es {
				if !strings.HasPrefix(e, "vars.yml") {
					t.Fatalf("error %q does not name the file", e)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, a := range got {
			if !variableRE.MatchString(a.Name) || seen[a.Name] || a.Line < 1 {
				t.Fatalf("bad assignment %+v in %v", a, got)
			}
			seen[a.Name] = true
		}
	})
}
