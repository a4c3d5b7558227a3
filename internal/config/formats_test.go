package config

import (
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/manifest"
)

// runnersYAML is the runner fleet's project: one use case in two
// architectures, written in the newer format, reading the older.
const runnersYAML = `project: runners
regions: [r1, r2]
channels:
  latest:
    manifest: modules/aws/ami_lookup/manifest.json
    format: runners-v2
    reads: [runners-v1]
manifest_formats:
  runners-v1:
    key: "{use_case}"
    fields:
      - {name: id, source: id}
      - {name: name, value: ubuntu}
      - {name: image_use_case, source: use_case}
      - {name: region, source: region}
      - {name: architecture, source: arch}
      - {name: deprecation_time, source: deprecation_time, layout: "2006-01-02T15:04:05.000Z"}
      - {name: public, source: public}
    encoding: {indent: 2, trailing_newline: false, escape: ascii}
  runners-v2:
    key: "{os}-{arch}-{role}"
    arch: {x86_64: amd64, arm64: arm64}
    fields:
      - {name: id, source: id}
      - {name: name, value: ubuntu}
      - {name: region, source: region}
      - {name: os, attribute: os}
      - {name: arch, source: arch}
      - {name: role, attribute: role}
      - {name: deprecation_time, source: deprecation_time, layout: "2006-01-02T15:04:05.000Z"}
      - {name: public, source: public}
    encoding: {indent: 2, trailing_newline: false, escape: ascii}
use_cases:
  linux-ephemeral:
    architectures: [x86_64, arm64]
    attributes: {os: linux, role: ephemeral}
    tests: [t.sh]
`

func TestFormatsParse(t *testing.T) {
	dir := newProject(t)
	c, err := Parse("kiln.yaml", []byte(runnersYAML), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ChannelFormats("latest"); strings.Join(got, " ") != "runners-v2 runners-v1" {
		t.Fatalf("ChannelFormats = %v", got)
	}
	f, ok := c.ManifestFormat("runners-v2")
	if !ok {
		t.Fatal("runners-v2 not found")
	}
	if f.Encoding != (manifest.Encoding{Indent: 2, Escape: manifest.EscapeASCII}) {
		t.Errorf("encoding = %+v", f.Encoding)
	}
	if f.Fields[1] != (manifest.Field{Name: "name", Source: manifest.SourceConstant, Value: "ubuntu"}) ||
		f.Fields[3] != (manifest.Field{Name: "os", Source: manifest.SourceAttribute, Attribute: "os"}) {
		t.Errorf("fields = %+v", f.Fields)
	}
	if d, _ := c.ManifestFormat(""); d != manifest.Default {
		t.Error("the default format is not kiln's")
	}
	if got := c.ChannelFormats("stable"); len(got) != 1 || got[0] != DefaultFormat {
		// stable is not declared in runnersYAML; ChannelFormats of an
		// unknown channel is kiln's format.
		t.Errorf("ChannelFormats(stable) = %v", got)
	}
	targets := c.ManifestTargets()
	if len(targets) != 2 || targets[0].Key != "linux-ephemeral-x86_64" || targets[1].Attributes["role"] != "ephemeral" {
		t.Fatalf("targets = %+v", targets)
	}

	// Defaults: a declared format indents by two and ends with a newline;
	// a channel without a format writes kiln's.
	doc := strings.Replace(runnersYAML, "    encoding: {indent: 2, trailing_newline: false, escape: ascii}\n  runners-v2", "  runners-v2", 1)
	doc += "  b:\n    architectures: [x86_64]\n    attributes: {os: linux, role: build}\n    tests: [t.sh]\n"
	doc = strings.Replace(doc, "channels:\n", "channels:\n  stable: {}\n", 1)
	if c, err = Parse("kiln.yaml", []byte(doc), dir); err != nil {
		t.Fatal(err)
	}
	f, _ = c.ManifestFormat("runners-v1")
	if f.Encoding != (manifest.Encoding{Indent: 2, TrailingNewline: true, Escape: manifest.EscapeJSON}) {
		t.Errorf("default encoding = %+v", f.Encoding)
	}
	if f, _ := c.ManifestFormat(c.Channels["stable"].Format); f != manifest.Default {
		t.Errorf("stable writes %q", c.Channels["stable"].Format)
	}
}

func TestFormatsErrors(t *testing.T) {
	dir := newProject(t)
	replace := func(old, nw string) string {
		if !strings.Contains(runnersYAML, old) {
			t.Fatalf("runnersYAML lacks %q", old)
		}
		return strings.Replace(runnersYAML, old, nw, 1)
	}
	secondUseCase := runnersYAML + "  linux-builder:\n    architectures: [x86_64]\n    attributes: {os: linux, role: ephemeral}\n    tests: [t.sh]\n"
	tests := []errorCase{
		{"unknown format", replace("format: runners-v2", "format: runners-v3"), []string{
			`kiln.yaml:6:13: channels.latest.format: unknown manifest format "runners-v3"; known: kiln, runners-v1, runners-v2 (declare yours under manifest_formats)`}},
		{"read format twice", replace("reads: [runners-v1]", "reads: [runners-v1, runners-v1]"), []string{
			`kiln.yaml:7:25: channels.latest.reads[1]: duplicate entry "runners-v1"`}},
		{"reads its own format", replace("reads: [runners-v1]", "reads: [runners-v2]"), []string{
			`kiln.yaml:7:13: channels.latest.reads[0]: "runners-v2" is the format the channel writes; reads lists other formats its history may be in`}},
		{"writes a read-only format", replace("format: runners-v2", "format: runners-v1"), []string{
			`kiln.yaml:6:13: channels.latest.format: format runners-v1 gives several architectures of a use case one key, so kiln cannot write it; add {arch} to its key, or list it under reads to read old files only`,
			`kiln.yaml:7:13: channels.latest.reads[0]: "runners-v1" is the format the channel writes; reads lists other formats its history may be in`}},
		{"key collides for two use cases", secondUseCase, []string{
			`kiln.yaml:21:10: manifest_formats.runners-v2.key: template "{os}-{arch}-{role}" gives use cases linux-builder (x86_64) and linux-ephemeral (x86_64) the same key "linux-amd64-ephemeral"; add a placeholder that tells them apart`}},
		{"written key shared by two architectures", replace(`key: "{os}-{arch}-{role}"`, `key: "{os}-{role}"`), []string{
			`kiln.yaml:6:13: channels.latest.format: format runners-v2 gives several architectures of a use case one key, so kiln cannot write it; add {arch} to its key, or list it under reads to read old files only`}},
		{"key collides for two architectures", strings.Replace(
			strings.Replace(runnersYAML, `key: "{os}-{arch}-{role}"`, `key: "{os}-{role}"`, 1), "      - {name: arch, source: arch}\n", "", 1), []string{
			`kiln.yaml:21:10: manifest_formats.runners-v2.key: template "{os}-{role}" gives both architectures of use case linux-ephemeral (x86_64, arm64) the key "linux-ephemeral"; add {arch}`}},
		{"attribute missing", replace("attributes: {os: linux, role: ephemeral}", "attributes: {os: linux}"), []string{
			`kiln.yaml:21:10: manifest_formats.runners-v2.key: use case linux-ephemeral has no attribute "role", which the key template "{os}-{arch}-{role}" uses; set use_cases.linux-ephemeral.attributes.role`}},
		{"arch without a name", replace("arch: {x86_64: amd64, arm64: arm64}", "arch: {x86_64: amd64}"), []string{
			`kiln.yaml:22:11: manifest_formats.runners-v2.arch: architecture arm64 of use case linux-ephemeral has no name here; name it (e.g. arm64: amd64) or leave arch out for kiln's names`}},
		{"bad layout", replace(`layout: "2006-01-02T15:04:05.000Z"}
      - {name: public, source: public}
    encoding: {indent: 2, trailing_newline: false, escape: ascii}
  runners-v2:`, `layout: "yesterday"}
      - {name: public, source: public}
    encoding: {indent: 2, trailing_newline: false, escape: ascii}
  runners-v2:`), []string{
			`kiln.yaml:17:68: manifest_formats.runners-v1.fields[5].layout: time layout "yesterday" does not read back what it writes (yesterday); use a Go layout with date, time and zone, such as 2006-01-02T15:04:05Z07:00 or 2006-01-02T15:04:05.000Z`}},
		{"unknown source", replace("{name: region, source: region}\n      - {name: os", "{name: region, source: zone}\n      - {name: os"), []string{
			`kiln.yaml:26:32: manifest_formats.runners-v2.fields[2].source: unknown source "zone"; allowed: id, name, region, arch, public, deprecation_time, use_case, key, attribute, constant`}},
		{"constant with a source", replace("{name: name, value: ubuntu}\n      - {name: region", "{name: name, source: id, value: ubuntu}\n      - {name: region"), []string{
			`kiln.yaml:24:7: manifest_formats.runners-v2.fields: fields "id" and "name" both hold id; kiln could not tell which to trust`,
			`kiln.yaml:25:41: manifest_formats.runners-v2.fields[1].value: a field with a value is a constant; leave out source "id"`}},
		{"unknown field of a format", replace("    arch: {x86_64", "    sorted: true\n    arch: {x86_64"), []string{
			`kiln.yaml:22:5: manifest_formats.runners-v2.sorted: unknown field; allowed: arch, encoding, fields, key`}},
		{"reserved name", replace("  runners-v1:", "  kiln:"), []string{
			`kiln.yaml:7:13: channels.latest.reads[0]: unknown manifest format "runners-v1"; known: kiln, runners-v2 (declare yours under manifest_formats)`,
			`kiln.yaml:9:3: manifest_formats.kiln: "kiln" names kiln's own format; call yours something else`}},
		{"attribute name", replace("attributes: {os: linux, role: ephemeral}", "attributes: {os: linux, role: ephemeral, Tier: x}"), []string{
			`kiln.yaml:36:46: use_cases.linux-ephemeral.attributes.Tier: invalid attribute name "Tier"; use a lowercase letter, then up to 31 lowercase letters, digits or _`}},
		{"reads kiln's while writing it", replace("format: runners-v2\n    reads: [runners-v1]", "reads: [kiln]"), []string{
			`kiln.yaml:6:13: channels.latest.reads[0]: "kiln" is the format the channel writes; reads lists other formats its history may be in`}},
		{"escape", replace("escape: ascii}\n  runners-v2", "escape: latin1}\n  runners-v2"), []string{
			`kiln.yaml:19:60: manifest_formats.runners-v1.encoding.escape: unknown escaping "latin1"; allowed: json, html, ascii`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErrors(t, tt.doc, dir, tt.want)
		})
	}
}
