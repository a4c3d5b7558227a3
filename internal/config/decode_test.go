package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// decodeCases cover the problems found while decoding: unknown fields,
// wrong types, duplicate keys, aliases. They also seed FuzzParse.
var decodeCases = []errorCase{
	{"unknown top-level field", localBase + "projekt: x\n", []string{
		"kiln.yaml:7:1: projekt: unknown field; allowed: backend, build_region, channels, ci, cleanup, cost_tag, deployments, destroy, distribution, forge, manifest_formats, naming, project, regions, serve, state, use_cases, variables"}},
	{"unknown use case field", localBase + "    arch: x86_64\n", []string{
		"kiln.yaml:7:5: use_cases.u.arch: unknown field; allowed: architectures, attributes, base, build, description, disk_size, exports, provision, publish, regions, schedule, tests, version"}},
	{"unknown field deep", localBase + "    provision: [{file: {source: f.txt, destination: /f, perm: '0644'}}]\n", []string{
		"kiln.yaml:7:57: use_cases.u.provision[0].file.perm: unknown field; allowed: destination, mode, owner, source"}},
	{"yaml-only fields are not fields", localBase + "dir: /tmp\n", []string{
		"kiln.yaml:7:1: dir: unknown field; allowed: backend, build_region, channels, ci, cleanup, cost_tag, deployments, destroy, distribution, forge, manifest_formats, naming, project, regions, serve, state, use_cases, variables"}},
	{"list for string", strings.Replace(localBase, "project: demo", "project: [a]", 1), []string{
		"kiln.yaml:1:10: project: expected a string, found a list"}},
	{"mapping for string", localBase + "    description: {a: b}\n", []string{
		"kiln.yaml:7:18: use_cases.u.description: expected a string, found a mapping"}},
	{"string for bool", localBase + "    publish: {public: abc}\n", []string{
		`kiln.yaml:7:23: use_cases.u.publish.public: expected true or false, found "abc"`}},
	{"quoted bool", localBase + "    publish: {public: 'true'}\n", []string{
		`kiln.yaml:7:23: use_cases.u.publish.public: expected true or false, found "true"`}},
	{"string for int", localBase + "cleanup: {confirm_above: abc}\n", []string{
		`kiln.yaml:7:26: cleanup.confirm_above: expected a whole number, found "abc"`}},
	{"float for int", localBase + "cleanup: {confirm_above: 1.5}\n", []string{
		"kiln.yaml:7:26: cleanup.confirm_above: expected a whole number, found 1.5"}},
	{"int out of range", localBase + "cleanup: {confirm_above: 18446744073709551615}\n", []string{
		"kiln.yaml:7:26: cleanup.confirm_above: number 18446744073709551615 is out of range"}},
	{"mapping for list", strings.Replace(localBase, "regions: [r1, r2]", "regions: {a: 1}", 1), []string{
		"kiln.yaml:2:10: regions: expected a list, found a mapping"}},
	{"string for list", strings.Replace(localBase, "[x86_64]", "x86_64", 1), []string{
		`kiln.yaml:5:20: use_cases.u.architectures: expected a list, found "x86_64"`}},
	{"list in list", strings.Replace(localBase, "regions: [r1, r2]", "regions: [r1, [x]]", 1), []string{
		"kiln.yaml:2:15: regions[1]: expected a string, found a list"}},
	{"bad size", localBase + "    disk_size: 2XB\n", []string{
		`kiln.yaml:7:16: use_cases.u.disk_size: invalid size "2XB": unknown unit "XB"; use B, KiB, MiB, GiB, TiB (or K, M, G, T), or KB, MB, GB, TB`}},
	{"bad duration", localBase + "    publish: {deprecate_after: 1y}\n", []string{
		`kiln.yaml:7:32: use_cases.u.publish.deprecate_after: invalid duration "1y"; use a duration such as 90m, 12h, 7d or 2w`}},
	{"duration without unit", localBase + "backend: {local: {boot_timeout: 600}}\n", []string{
		`kiln.yaml:7:33: backend.local.boot_timeout: duration "600" has no unit (s, m, h, d or w); use a duration such as 90m, 12h, 7d or 2w`}},
	{"string for struct", localBase + "backend: local\n", []string{
		`kiln.yaml:7:10: backend: expected a mapping of fields, found "local"`}},
	{"list for map", localBase + "channels: [latest]\n", []string{
		"kiln.yaml:7:11: channels: expected a mapping of names to values, found a list"}},
	{"duplicate key", localBase + "project: x\n", []string{
		"kiln.yaml:7:1: project: duplicate key; first set at line 1"}},
	{"duplicate use case", localBase + "  u:\n    architectures: [arm64]\n", []string{
		"kiln.yaml:7:3: use_cases.u: duplicate key; first set at line 4"}},
	{"non-string key", localBase + "? [a]\n: 1\n", []string{
		"kiln.yaml:7:3: a key must be a plain name, found a list"}},
	{"binary for string", strings.Replace(localBase, "project: demo", "project: !!binary ZGVtbw==", 1), []string{
		`kiln.yaml:1:10: project: expected a string, found !!binary "ZGVtbw=="`}},
	{"merge cycle", localBase + "cost_tag: &a {<<: *a}\n", []string{
		"kiln.yaml:7:19: cost_tag: alias *a refers to a value that contains it"}},
	{"merge of a string", localBase + "cost_tag: {<<: x}\n", []string{
		`kiln.yaml:7:16: cost_tag: a merge (<<) takes a mapping or a list of mappings, found "x"`}},
	{"null use case", "project: demo\nregions: [r1]\nuse_cases:\n  u:\n", []string{
		"kiln.yaml:4:3: use_cases.u.architectures: use case has no architecture; allowed: x86_64, arm64",
		"kiln.yaml:4:3: use_cases.u.tests: use case has no tests; a candidate must be testable: list scripts to run inside the booted image, e.g. tests: [tests/boot.sh]",
	}},
	{"alias to wrong type", localBase + "x: &l [a]\n", []string{
		"kiln.yaml:7:1: x: unknown field; allowed: backend, build_region, channels, ci, cleanup, cost_tag, deployments, destroy, distribution, forge, manifest_formats, naming, project, regions, serve, state, use_cases, variables"}},
	{"alias used with wrong type", "project: demo\nregions: &r [r1]\nuse_cases:\n  u: {architectures: [x86_64], tests: [t.sh], description: *r}\n", []string{
		"kiln.yaml:4:60: use_cases.u.description: expected a string, found a list"}},
	{"several problems", lines(
		"project: Demo",           // 1: invalid value
		"regions: [r1, r1]",       // 2: duplicate
		"colour: blue",            // 3: unknown field
		"use_cases:",              // 4
		"  u:",                    // 5
		"    architectures: x86",  // 6: wrong type
		"    tests: [t.sh, x.sh]", // 7: missing file
		"    disk_size: 1",        // 8: out of range
		"project: demo",           // 9: duplicate key
	), []string{
		`kiln.yaml:1:10: project: invalid project name "Demo"; use up to 63 lowercase letters, digits and dashes, starting with a letter or digit`,
		`kiln.yaml:2:15: regions[1]: duplicate region "r1"`,
		"kiln.yaml:3:1: colour: unknown field; allowed: backend, build_region, channels, ci, cleanup, cost_tag, deployments, destroy, distribution, forge, manifest_formats, naming, project, regions, serve, state, use_cases, variables",
		`kiln.yaml:6:20: use_cases.u.architectures: expected a list, found "x86"`,
		`kiln.yaml:7:19: use_cases.u.tests[1]: test script "x.sh" not found: DIR/x.sh does not exist`,
		"kiln.yaml:8:16: use_cases.u.disk_size: disk size 1 is out of range; allowed: 1GiB to 2TiB",
		"kiln.yaml:9:1: project: duplicate key; first set at line 1",
	}},
}

func TestDecodeErrors(t *testing.T) {
	dir := newProject(t)
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			wantErrors(t, tc.doc, dir, tc.want)
		})
	}
}

// validDocs parse without errors. They also seed FuzzParse.
var validDocs = map[string]string{
	"local minimal":   localBase,
	"aws minimal":     awsBase,
	"aws name filter": awsBaseWith("    base: {name_filter: 'debian-12-amd64-*', owner: '136693071363'}"),
	"aws ssm base":    awsBaseWith("    base: {ssm_parameter: /aws/service/debian/release/bookworm/latest/amd64}"),
	// The 2-year limit is AWS's, for public images only.
	"local long deprecation":       localBase + "    publish: {public: true, deprecate_after: 800d}\n",
	"aws private long deprecation": awsBase + "    publish: {public: false, deprecate_after: 800d}\n",
	"aws exports": awsWith(`backend: {type: aws, aws: {allowed_accounts: ["123456789012"], export_bucket: my.bucket-1}}`) +
		"    exports: [vmdk, raw]\n",
	"ssm parameters": awsWith(`backend: {type: aws, aws: {allowed_accounts: ['123456789012'], ssm_parameters: '/kiln/{channel}/{use_case}'}}`),
	"one channel without {channel}": awsWith(`backend: {type: aws, aws: {allowed_accounts: ['123456789012'], ssm_parameters: '/kiln/{use_case}'}}`) +
		"channels: {stable: {}}\n",
	"all steps": localBase + lines(
		"    provision:",
		"      - shell: s.sh",
		"      - name: copy",
		"        file: {source: dir, destination: /opt/x, mode: 0755, owner: '1000:1000'}",
		"      - ansible: {playbook: p.yml, extra_vars: {port: 8080, name: x}}",
		"    schedule: '*/15 3-5 L * mon-fri'",
		"    version: 1.10",
	),
	"anchors and merges": lines(
		"project: demo",
		"regions: [r1, r2, r3]",
		"use_cases:",
		"  a: &common",
		"    architectures: [x86_64, arm64]",
		"    tests: [t.sh]",
		"    regions: &some [r2, r3]",
		"  b:",
		"    <<: *common",
		"    architectures: [arm64]",
		"  c: {<<: [*common], description: third}",
		"naming: {release: '{use_case}-{arch}-{version}'}",
	),
	"nulls are defaults": localBase + lines(
		"backend: {type: ~, local: {boot_timeout: }}",
		"cleanup:",
		"state: null",
		"channels:",
		"  latest:",
	),
	"absolute paths":               localBase + "    provision: [{shell: DIR/s.sh}]\nstate: /var/lib/kiln\n",
	"explicit zero confirm":        localBase + "cleanup: {confirm_above: 0}\n",
	"documents with an end marker": localBase + "...\n",
	"comments and a BOM":           "\ufeff# a comment\n" + localBase + "# the end\n",
}

func TestValidDocs(t *testing.T) {
	dir := newProject(t)
	for name, doc := range validDocs {
		t.Run(name, func(t *testing.T) {
			c, err := Parse("kiln.yaml", []byte(strings.ReplaceAll(doc, "DIR", dir)), dir)
			if err != nil {
				t.Fatalf("%s\n%v", doc, err)
			}
			if c == nil {
				t.Fatal("nil config without an error")
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	dir := newProject(t)
	c, err := Parse("kiln.yaml", []byte(validDocs["all steps"]), dir)
	if err != nil {
		t.Fatal(err)
	}
	u := c.UseCases["u"]
	if got := u.Provision[1].File.Mode; got != "0755" {
		t.Errorf("mode 0755 unquoted read as %q, want the literal text", got)
	}
	if got := u.Version; got != "1.10" {
		t.Errorf("version 1.10 unquoted read as %q, want the literal text", got)
	}
	if got := u.Provision[2].Ansible.ExtraVars; got["port"] != "8080" || got["name"] != "x" {
		t.Errorf("extra_vars = %v", got)
	}
	if got := u.Provision[1].Name; got != "copy" {
		t.Errorf("step name = %q", got)
	}

	c, err = Parse("kiln.yaml", []byte(validDocs["anchors and merges"]), dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		archs, region []string
		desc          string
	}{
		{"a", []string{"x86_64", "arm64"}, []string{"r2", "r3"}, ""},
		{"b", []string{"arm64"}, []string{"r2", "r3"}, ""},
		{"c", []string{"x86_64", "arm64"}, []string{"r2", "r3"}, "third"},
	} {
		u := c.UseCases[tc.name]
		if u == nil {
			t.Fatalf("use case %s missing", tc.name)
		}
		if strings.Join(u.Architectures, " ") != strings.Join(tc.archs, " ") ||
			strings.Join(u.Regions, " ") != strings.Join(tc.region, " ") ||
			u.Description != tc.desc || strings.Join(u.Tests, " ") != "t.sh" {
			t.Errorf("use case %s = %+v", tc.name, u)
		}
	}
}

// A small file cannot expand into a huge config through aliases: here
// 2,000 use cases each take a 1,000-region list by alias, 2 million values
// from 140 KB.
func TestAliasExpansionBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("project: demo\nregions: [r1]\nuse_cases:\n")
	b.WriteString("  u: {architectures: [x86_64], tests: [t.sh], regions: &r [" + strings.Repeat("r1, ", 999) + "r1]}\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  u%d: {architectures: [x86_64], tests: [t.sh], regions: *r}\n", i)
	}
	_, err := Parse("kiln.yaml", []byte(b.String()), newProject(t))
	got := errorStrings(t, err)
	want := "the document has more than 100000 values (counting alias expansions); a kiln.yaml is far smaller"
	if !slices.ContainsFunc(got, func(e string) bool { return strings.HasSuffix(e, ": "+want) }) {
		t.Errorf("errors %q lack %q", got, want)
	}
}
