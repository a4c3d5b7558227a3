package manifest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/manifest/consumertest"
)

// awsMillis is the time layout of DescribeImages' DeprecationTime, which
// the runner fleet's tooling copied into its manifests.
const awsMillis = "2006-01-02T15:04:05.000Z"

// pythonDump is how the runner fleet's tooling laid out its files:
// json.dump(m, f, indent=2), which escapes non-ASCII and ends without a
// newline.
var pythonDump = Encoding{Indent: 2, Escape: EscapeASCII}

// runnersV1 is the runner fleet's older format: keyed by use case, an
// architecture field under kiln's names, a constant name.
func runnersV1() *Format {
	return &Format{
		Name: "runners-v1",
		Key:  "{use_case}",
		Fields: []Field{
			{Name: "id", Source: SourceID},
			{Name: "name", Source: SourceConstant, Value: "ubuntu"},
			{Name: "image_use_case", Source: SourceUseCase},
			{Name: "region", Source: SourceRegion},
			{Name: "architecture", Source: SourceArch},
			{Name: "deprecation_time", Source: SourceDeprecation, Layout: awsMillis},
			{Name: "public", Source: SourcePublic},
		},
		Encoding: pythonDump,
	}
}

// runnersV2 is its newer format: keyed {os}-{arch}-{role} with Debian's
// architecture names, the attributes repeated as fields.
func runnersV2() *Format {
	return &Format{
		Name: "runners-v2",
		Key:  "{os}-{arch}-{role}",
		Arch: map[string]string{"x86_64": "amd64", "arm64": "arm64"},
		Fields: []Field{
			{Name: "id", Source: SourceID},
			{Name: "name", Source: SourceConstant, Value: "ubuntu"},
			{Name: "region", Source: SourceRegion},
			{Name: "os", Source: SourceAttribute, Attribute: "os"},
			{Name: "arch", Source: SourceArch},
			{Name: "role", Source: SourceAttribute, Attribute: "role"},
			{Name: "deprecation_time", Source: SourceDeprecation, Layout: awsMillis},
			{Name: "public", Source: SourcePublic},
		},
		Encoding: pythonDump,
	}
}

var runnerAttrs = map[string]string{"os": "linux", "role": "ephemeral"}

// runnerTargets are the runner project's use case in the architectures
// given, with kiln's keys as config.UseCase.ManifestKey makes them.
func runnerTargets(archs ...string) []Target {
	var ts []Target
	for _, a := range archs {
		key := "linux-ephemeral"
		if len(archs) > 1 {
			key += "-" + a
		}
		ts = append(ts, Target{UseCase: "linux-ephemeral", Arch: a, Key: key, Attributes: runnerAttrs})
	}
	return ts
}

func bind(t *testing.T, f *Format, targets []Target) *Layout {
	t.Helper()
	if errs := f.Check(); len(errs) > 0 {
		t.Fatalf("format %s: %v", f.Name, errs)
	}
	l, errs := f.Bind(targets)
	if len(errs) > 0 {
		t.Fatalf("bind %s: %v", f.Name, errs)
	}
	return l
}

func consumerFile(t *testing.T, name string) []byte {
	t.Helper()
	return readTestdata(t, filepath.Join("consumer", name))
}

// The fixtures are the consumer's own bytes, and kiln reads them and writes
// them back byte for byte, in either project: one that writes the older
// format (one architecture), one that writes the newer (two).
func TestConsumerFormatsRoundTrip(t *testing.T) {
	tests := []struct {
		file    string
		format  *Format
		targets []Target
		entries int
	}{
		{"runners-v1.json", runnersV1(), runnerTargets("x86_64"), 3},
		{"runners-v2.json", runnersV2(), runnerTargets("x86_64", "arm64"), 4},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data := consumerFile(t, tt.file)
			if bytes.HasSuffix(data, []byte("\n")) {
				t.Fatalf("%s ends with a newline; the consumer's files do not", tt.file)
			}
			if got := consumertest.PythonDump(t, data, 2); !bytes.Equal(got, data) {
				t.Fatalf("%s is not in the layout of Python's json.dump(indent=2):\n%s", tt.file, got)
			}
			l := bind(t, tt.format, tt.targets)
			m, err := l.Check(tt.file, data, AWSRules)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(m.Entries()); n != tt.entries {
				t.Fatalf("%d entries; want %d", n, tt.entries)
			}
			out, err := l.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("kiln writes\n%s\nthe consumer wrote\n%s", out, data)
			}
		})
	}
}

// What kiln holds is the same whatever the format: kiln's keys, kiln's
// architecture names, RFC 3339 times.
func TestConsumerFormatsDecodeToKilnTerms(t *testing.T) {
	l := bind(t, runnersV2(), runnerTargets("x86_64", "arm64"))
	m, err := l.Decode("v2.json", consumerFile(t, "runners-v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	e, ok := m.Get("linux-ephemeral-arm64", "us-east-1")
	want := Entry{Architecture: "arm64", DeprecationTime: "2026-09-02T08:05:11Z", ID: "ami-0a3c5e7f9b1d24680", Public: true}
	if !ok || e != want {
		t.Fatalf("linux-ephemeral-arm64 us-east-1 = %+v, %v; want %+v", e, ok, want)
	}
	if l.Binds(SourceName) || !l.Binds(SourceDeprecation) || !l.Binds(SourceArch) {
		t.Fatalf("Binds: name %v, deprecation %v, arch %v", l.Binds(SourceName), l.Binds(SourceDeprecation), l.Binds(SourceArch))
	}
	if fk, ok := l.FileKey("linux-ephemeral-x86_64"); !ok || fk != "linux-amd64-ephemeral" {
		t.Fatalf("FileKey = %q, %v", fk, ok)
	}
}

// A manifest kiln builds (as publish does) is written in the format with
// the constant, the attributes, the region and the architecture name filled
// in from the key.
func TestEncodeDeclaredFromKilnEntries(t *testing.T) {
	l := bind(t, runnersV2(), runnerTargets("x86_64", "arm64"))
	m := Manifest{}
	m.Set("linux-ephemeral-x86_64", "us-east-1", Entry{Architecture: "x86_64", ID: "ami-048b8191da9c5e202", Name: "linux-ephemeral-x86_64-1.0", Public: true,
		DeprecationTime: "2026-07-17T16:19:49Z"})
	got, err := l.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "linux-amd64-ephemeral": {
    "us-east-1": {
      "id": "ami-048b8191da9c5e202",
      "name": "ubuntu",
      "region": "us-east-1",
      "os": "linux",
      "arch": "amd64",
      "role": "ephemeral",
      "deprecation_time": "2026-07-17T16:19:49.000Z",
      "public": true
    }
  }
}`
	if string(got) != want {
		t.Fatalf("Encode:\n%s\nwant:\n%s", got, want)
	}

	// A use case the format has no key for cannot be written.
	m.Set("other", "us-east-1", Entry{Architecture: "x86_64", ID: "ami-048b8191da9c5e202"})
	if _, err := l.Encode(m); err == nil || !strings.Contains(err.Error(), `format runners-v2 has no key for other`) {
		t.Fatalf("Encode of an unknown use case: %v", err)
	}
	if err := l.Validate("f.json", m, AWSRules); err == nil ||
		!strings.Contains(err.Error(), "f.json: other: format runners-v2 has no key for other: it is not a use case and architecture of this project; the keys are linux-amd64-ephemeral, linux-arm64-ephemeral") {
		t.Fatalf("Validate of an unknown use case: %v", err)
	}
}

// v2Doc is a one-entry runners-v2 file with the given field lines (one per
// line from line 4, column 7), under key and region.
func v2Doc(key, region string, fields ...string) string {
	return "{\n  \"" + key + "\": {\n    \"" + region + "\": {\n      " + strings.Join(fields, ",\n      ") + "\n    }\n  }\n}"
}

var v2Fields = []string{
	`"id": "ami-048b8191da9c5e202"`, `"name": "ubuntu"`, `"region": "us-east-1"`, `"os": "linux"`,
	`"arch": "amd64"`, `"role": "ephemeral"`, `"deprecation_time": "2026-07-17T16:19:49.000Z"`, `"public": true`,
}

// v2With is v2Fields with field i replaced by line (or dropped for "").
func v2With(i int, line string) []string {
	out := append([]string(nil), v2Fields...)
	if line == "" {
		return append(out[:i], out[i+1:]...)
	}
	out[i] = line
	return out
}

// Every way a file can disagree with its format is an error at the place
// it happens, saying what is allowed.
func TestDecodeDeclaredErrors(t *testing.T) {
	l := bind(t, runnersV2(), runnerTargets("x86_64", "arm64"))
	fieldList := "id, name, region, os, arch, role, deprecation_time, public"
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"valid", v2Doc("linux-amd64-ephemeral", "us-east-1", v2Fields...), nil},
		{"unknown field", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(4, `"architecture": "amd64"`)...), []string{
			`f.json:8:7: linux-amd64-ephemeral.us-east-1.architecture: unknown field "architecture"; the fields are ` + fieldList,
			`f.json:3:18: linux-amd64-ephemeral.us-east-1: missing field "arch"`}},
		{"missing field", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(1, "")...), []string{
			`f.json:3:18: linux-amd64-ephemeral.us-east-1: missing field "name"`}},
		{"key no use case produces", v2Doc("linux-x86_64-ephemeral", "us-east-1", v2Fields...), []string{
			`f.json:2:3: linux-x86_64-ephemeral: no use case and architecture of this project has this key in format runners-v2 (key "{os}-{arch}-{role}"); ` +
				`the keys are linux-amd64-ephemeral, linux-arm64-ephemeral`}},
		{"arch outside the mapping", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(4, `"arch": "x86_64"`)...), []string{
			`f.json:8:15: linux-amd64-ephemeral.us-east-1.arch: architecture "x86_64" is not one of format runners-v2's names; use amd64 or arm64`}},
		{"arch disagrees with the key", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(4, `"arch": "arm64"`)...), []string{
			`f.json:8:15: linux-amd64-ephemeral.us-east-1.arch: architecture "arm64" disagrees with its key linux-amd64-ephemeral, which stands for x86_64; want "amd64"`}},
		{"region disagrees with its key", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(2, `"region": "us-west-2"`)...), []string{
			`f.json:6:17: linux-amd64-ephemeral.us-east-1.region: "us-west-2" disagrees with the region it is listed under (us-east-1); want "us-east-1"`}},
		{"attribute disagrees with its key", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(5, `"role": "persistent"`)...), []string{
			`f.json:9:15: linux-amd64-ephemeral.us-east-1.role: "persistent" disagrees with its key linux-amd64-ephemeral, whose use case linux-ephemeral has role "ephemeral"; want "ephemeral"`}},
		{"constant differs", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(1, `"name": "debian"`)...), []string{
			`f.json:5:15: linux-amd64-ephemeral.us-east-1.name: must be "ubuntu" in every entry (a constant of format runners-v2); found "debian"`}},
		{"time in another layout", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(6, `"deprecation_time": "2026-07-17T16:19:49Z"`)...), []string{
			`f.json:10:27: linux-amd64-ephemeral.us-east-1.deprecation_time: "2026-07-17T16:19:49Z" is not a time in the layout 2006-01-02T15:04:05.000Z, like 2027-11-21T22:33:09.000Z; leave it "" for none`}},
		{"no deprecation", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(6, `"deprecation_time": ""`)...), nil},
		{"public a string", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(7, `"public": "true"`)...), []string{
			`f.json:11:17: linux-amd64-ephemeral.us-east-1.public: must be a boolean (true or false), found string "true"`}},
		{"constant a number", v2Doc("linux-amd64-ephemeral", "us-east-1", v2With(1, `"name": 1`)...), []string{
			`f.json:5:15: linux-amd64-ephemeral.us-east-1.name: must be a string, found number 1`}},
		{"several at once", v2Doc("linux-amd64-ephemeral", "eu-west-1", v2With(0, `"id": "ami-048b8191da9c5e202", "extra": 1`)...), []string{
			`f.json:4:38: linux-amd64-ephemeral.eu-west-1.extra: unknown field "extra"; the fields are ` + fieldList,
			`f.json:6:17: linux-amd64-ephemeral.eu-west-1.region: "us-east-1" disagrees with the region it is listed under (eu-west-1); want "eu-west-1"`}},
		{"empty key", `{"linux-amd64-ephemeral": {}}`, []string{
			`f.json:1:27: linux-amd64-ephemeral: key has no regions; remove it or add a region`}},
		{"top level", `[]`, []string{`f.json:1:1: the top level must be an object of keys, found array`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Check("f.json", []byte(tt.in), AWSRules)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Check = %v; want Errors", err)
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Fatalf("Check:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// Values are checked as in kiln's format, named as the file names them.
func TestCheckDeclaredValues(t *testing.T) {
	l := bind(t, runnersV2(), runnerTargets("x86_64", "arm64"))
	in := v2Doc("linux-amd64-ephemeral", "nowhere", v2With(0, `"id": "ami-nothex"`)...)
	in = strings.Replace(in, `"region": "us-east-1"`, `"region": "nowhere"`, 1)
	_, err := l.Check("f.json", []byte(in), AWSRules)
	want := `f.json:3:5: linux-amd64-ephemeral.nowhere: region "nowhere" is not valid; want ` + awsRegForm + "\n" +
		`f.json:4:13: linux-amd64-ephemeral.nowhere.id: id "ami-nothex" is not valid; want ` + awsIDForm
	if err == nil || err.Error() != want {
		t.Fatalf("Check:\n%v\nwant:\n%s", err, want)
	}
}

func TestFormatCheck(t *testing.T) {
	good := runnersV2
	tests := []struct {
		name   string
		change func(*Format)
		want   string
	}{
		{"no key", func(f *Format) { f.Key = "" }, `key: missing; give a key template such as "{use_case}" or "{os}-{arch}-{role}"`},
		{"no placeholder", func(f *Format) { f.Key = "runners" }, `key: "runners" has no placeholder; every use case would get the same key`},
		{"unmatched brace", func(f *Format) { f.Key = "{os}-{arch" }, `key: "{os}-{arch" has an unmatched { or }; placeholders are written {name}`},
		{"bad placeholder", func(f *Format) { f.Key = "{OS}-{arch}" }, `key: placeholder {OS} is not {use_case}, {arch} or the name of a use-case attribute (a lowercase letter, then lowercase letters, digits or _)`},
		{"unknown arch", func(f *Format) { f.Arch["i386"] = "x86" }, `arch: "i386" is not an architecture kiln builds; the keys are x86_64, arm64`},
		{"no id", func(f *Format) { f.Fields = f.Fields[1:] }, `fields: no field holds the image id (source id); consumers and kiln need it`},
		{"field twice", func(f *Format) { f.Fields[2].Name = "id" }, `fields[2].name: field "id" is listed twice (first as fields[0])`},
		{"unknown source", func(f *Format) { f.Fields[2].Source = "zone" }, `fields[2].source: unknown source "zone"; allowed: id, name, region, arch, public, deprecation_time, use_case, key, attribute, constant`},
		{"bad layout", func(f *Format) { f.Fields[6].Layout = "Jan 2" }, `fields[6].layout: time layout "Jan 2" does not read back what it writes (Nov 21); use a Go layout with date, time and zone, such as 2006-01-02T15:04:05Z07:00 or 2006-01-02T15:04:05.000Z`},
		{"layout elsewhere", func(f *Format) { f.Fields[0].Layout = awsMillis }, `fields[0].layout: only a deprecation_time field has a time layout`},
		{"two id fields", func(f *Format) { f.Fields[1] = Field{Name: "image", Source: SourceID} }, `fields: fields "id" and "image" both hold id; kiln could not tell which to trust`},
		{"compact with indent", func(f *Format) { f.Encoding.Compact = true }, `encoding.compact: compact applies to one-line files only (indent 0)`},
		{"escape", func(f *Format) { f.Encoding.Escape = "latin1" }, `encoding.escape: unknown escaping "latin1"; allowed: json, html, ascii`},
	}
	if errs := good().Check(); errs != nil {
		t.Fatalf("runners-v2: %v", errs)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := good()
			tt.change(f)
			errs := f.Check()
			if len(errs) != 1 || errs[0].Error() != tt.want {
				t.Fatalf("Check = %v; want %s", errs, tt.want)
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	twoUseCases := append(runnerTargets("x86_64"), Target{UseCase: "linux-persistent", Arch: "x86_64", Key: "linux-persistent", Attributes: runnerAttrs})
	noRole := []Target{{UseCase: "windows", Arch: "x86_64", Key: "windows", Attributes: map[string]string{"os": "windows"}}}
	tests := []struct {
		name    string
		f       *Format
		targets []Target
		want    string
	}{
		{"use cases collide", runnersV2(), twoUseCases,
			`key: template "{os}-{arch}-{role}" gives use cases linux-ephemeral (x86_64) and linux-persistent (x86_64) the same key "linux-amd64-ephemeral"; add a placeholder that tells them apart`},
		{"architectures collide", func() *Format {
			f := runnersV2()
			f.Key = "{os}-{role}"
			f.Fields = append(f.Fields[:4], f.Fields[5:]...) // no arch field
			return f
		}(), runnerTargets("x86_64", "arm64"),
			`key: template "{os}-{role}" gives both architectures of use case linux-ephemeral (x86_64, arm64) the key "linux-ephemeral"; add {arch}`},
		{"attribute missing from the key", runnersV2(), noRole,
			`key: use case windows has no attribute "role", which the key template "{os}-{arch}-{role}" uses; set use_cases.windows.attributes.role`},
		{"attribute missing from a field", func() *Format { f := runnersV2(); f.Key = "{os}-{arch}"; return f }(), noRole,
			`fields: use case windows has no attribute "role", which field "role" holds; set use_cases.windows.attributes.role`},
		{"arch without a name", func() *Format { f := runnersV2(); delete(f.Arch, "arm64"); return f }(), runnerTargets("x86_64", "arm64"),
			`arch: architecture arm64 of use case linux-ephemeral has no name here; name it (e.g. arm64: amd64) or leave arch out for kiln's names`},
		{"two names alike", func() *Format { f := runnersV2(); f.Arch["arm64"] = "amd64"; return f }(), runnerTargets("x86_64"),
			`arch: arm64 and x86_64 both map to "amd64"; each architecture needs its own name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := tt.f.Bind(tt.targets)
			if len(errs) != 1 || errs[0].Error() != tt.want {
				t.Fatalf("Bind = %v; want %s", errs, tt.want)
			}
		})
	}
}

// The older format keys by use case alone; with the project's second
// architecture it can still read history (the entries say their
// architecture) but kiln refuses to write it.
func TestReadOnlyLayout(t *testing.T) {
	l := bind(t, runnersV1(), runnerTargets("x86_64", "arm64"))
	if l.Writable() {
		t.Fatal("runners-v1 with two architectures is writable")
	}
	m, err := l.Check("v1.json", consumerFile(t, "runners-v1.json"), AWSRules)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Get("linux-ephemeral-x86_64", "us-west-2"); !ok || len(m) != 1 {
		t.Fatalf("read %v", m)
	}
	if _, err := l.Encode(m); err == nil || !strings.Contains(err.Error(), "can only be read") {
		t.Fatalf("Encode = %v", err)
	}
	// An arm64 entry under the shared key is read as the arm64 target.
	arm := strings.Replace(string(consumerFile(t, "runners-v1.json")), `"architecture": "x86_64"`, `"architecture": "arm64"`, 1)
	if m, err = l.Decode("v1.json", []byte(arm)); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Get("linux-ephemeral-arm64", "eu-west-1"); !ok {
		t.Fatalf("arm64 entry not read as linux-ephemeral-arm64: %v", m)
	}
	bad := strings.Replace(arm, `"architecture": "arm64"`, `"architecture": "amd64"`, 1)
	if _, err := l.Decode("v1.json", []byte(bad)); err == nil || !strings.Contains(err.Error(),
		`v1.json:8:23: linux-ephemeral.eu-west-1.architecture: architecture "amd64" is not one of format runners-v1's names; use x86_64 or arm64`) {
		t.Fatalf("Decode of an unknown architecture: %v", err)
	}
}

// The older file against the newer, in the runner project: only what
// changed shows, in the newer file's terms.
func TestDiffAcrossFormats(t *testing.T) {
	targets := runnerTargets("x86_64", "arm64")
	v1 := bind(t, runnersV1(), targets)
	v2 := bind(t, runnersV2(), targets)
	a, err := v1.Decode("v1.json", consumerFile(t, "runners-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := v2.Decode("v2.json", consumerFile(t, "runners-v2.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := FormatDiff(&out, DiffLayouts(a, v1, b, v2)); err != nil {
		t.Fatal(err)
	}
	golden(t, "consumer/v1-to-v2.diff", out.Bytes())
	if strings.Contains(out.String(), "linux-amd64-ephemeral.us-east-1") {
		t.Errorf("the unchanged entry shows:\n%s", out.String())
	}

	// A file against itself in another format: nothing.
	again, err := v2.Encode(a)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := v2.Decode("again.json", again)
	if err != nil {
		t.Fatal(err)
	}
	if changes := DiffLayouts(a, v1, a2, v2); len(changes) != 0 {
		t.Fatalf("the same entries in another format differ: %+v", changes)
	}
}

// DecodeAny tells the formats apart, and a file that fits none gets the
// errors of the closest.
func TestDecodeAny(t *testing.T) {
	targets := runnerTargets("x86_64", "arm64")
	v1 := bind(t, runnersV1(), targets)
	v2 := bind(t, runnersV2(), targets)
	for file, want := range map[string]*Layout{"runners-v1.json": v1, "runners-v2.json": v2} {
		_, got, err := CheckAny(file, consumerFile(t, file), AWSRules, v2, v1)
		if err != nil || got != want {
			t.Fatalf("%s: layout %v, %v; want %s", file, got, err, want.f.Name)
		}
	}
	bad := strings.Replace(string(consumerFile(t, "runners-v2.json")), `"role": "ephemeral"`, `"role": "eph"`, 1)
	_, _, err := CheckAny("f.json", []byte(bad), AWSRules, v2, v1)
	want := "f.json: fits none of the formats runners-v2, runners-v1; the problems against runners-v2, the closest:\n" +
		`f.json:9:15: linux-amd64-ephemeral.eu-west-1.role: "eph" disagrees with its key linux-amd64-ephemeral, whose use case linux-ephemeral has role "ephemeral"; want "ephemeral"`
	if err == nil || err.Error() != want {
		t.Fatalf("CheckAny:\n%v\nwant:\n%s", err, want)
	}
}

// The other layouts consumers' tools write: Python's json.dump on one line
// and Terraform's jsonencode (one line, no spaces, HTML escapes; Terraform
// sorts an object's attributes, so such a format lists its fields sorted).
func TestEncodingStyles(t *testing.T) {
	m := Manifest{"uc": {"us-east-1": {Architecture: "x86_64", ID: "ami-048b8191da9c5e202", Name: "a <b> & ü\u2028", Public: true}}}
	tests := []struct {
		name string
		enc  Encoding
		want string
	}{
		{"python one line", Encoding{Escape: EscapeASCII},
			`{"uc": {"us-east-1": {"architecture": "x86_64", "deprecation_time": "", "id": "ami-048b8191da9c5e202", "name": "a <b> & \u00fc\u2028", "public": true}}}`},
		{"terraform jsonencode", Encoding{Compact: true, Escape: EscapeHTML},
			`{"uc":{"us-east-1":{"architecture":"x86_64","deprecation_time":"","id":"ami-048b8191da9c5e202","name":"a \u003cb\u003e \u0026 ü\u2028","public":true}}}`},
		{"indent 4 with newline", Encoding{Indent: 4, TrailingNewline: true},
			"{\n    \"uc\": {\n        \"us-east-1\": {\n            \"architecture\": \"x86_64\",\n            \"deprecation_time\": \"\",\n            \"id\": \"ami-048b8191da9c5e202\",\n            \"name\": \"a <b> & ü\\u2028\",\n            \"public\": true\n        }\n    }\n}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := *Default
			f.Key, f.Encoding = "{use_case}", tt.enc
			l := bind(t, &f, []Target{{UseCase: "uc", Arch: "x86_64", Key: "uc"}})
			got, err := l.Encode(m)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("Encode:\n%s\nwant:\n%s", got, tt.want)
			}
			back, err := l.Decode("f.json", got)
			if err != nil || !back.Equal(m) {
				t.Fatalf("Decode of the encoding: %v, %v", back, err)
			}
		})
	}
}

// writeStringASCII agrees with Python's json.dumps on every kind of
// character, including those beyond the BMP and DEL.
func TestWriteStringASCIIMatchesPython(t *testing.T) {
	in := []string{"plain", `"q" \ /`, "tab\tnl\ncr\rbs\bff\f", "\x00\x01\x1f\x7f", "ünïcödé 日本 🚀", "\u2028\u2029", "<&>"}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, s := range in {
		if i > 0 {
			b.WriteString(", ")
		}
		writeStringASCII(&b, s)
	}
	b.WriteByte(']')
	if out := consumertest.PythonDump(t, b.Bytes(), -1); !bytes.Equal(out, b.Bytes()) {
		t.Fatalf("kiln:   %s\npython: %s", b.Bytes(), out)
	}
}

// The fixtures' generator is the consumer's tool; if it changes, the
// fixtures must be regenerated with it.
func TestConsumerFixturesAreTheToolsOutput(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("this test runs the consumer's Python tool: %v", err)
	}
	for _, v := range []string{"v1", "v2"} {
		in, err := os.Open(filepath.Join("testdata", "consumer", "entries-"+v+".json"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(py, filepath.Join("testdata", "consumer", "write_manifest.py"), v)
		cmd.Stdin = in
		out, err := cmd.Output()
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := consumerFile(t, "runners-"+v+".json"); !bytes.Equal(out, want) {
			t.Fatalf("write_manifest.py %s no longer writes runners-%s.json", v, v)
		}
	}
}

// Terraform's jsonencode writes what kiln writes for a format declared
// compact with HTML escaping and its fields sorted; Terraform reads the
// value back with jsondecode(...)[key][region].id.
func TestTerraformStyleMatchesJsonencode(t *testing.T) {
	f := &Format{
		Name:     "tf",
		Key:      "{use_case}-{arch}",
		Arch:     map[string]string{"x86_64": "amd64"},
		Fields:   []Field{{Name: "arch", Source: SourceArch}, {Name: "id", Source: SourceID}, {Name: "name", Source: SourceName}, {Name: "public", Source: SourcePublic}},
		Encoding: Encoding{Compact: true, Escape: EscapeHTML},
	}
	l := bind(t, f, []Target{{UseCase: "uc", Arch: "x86_64", Key: "uc"}})
	m := Manifest{"uc": {
		"us-east-1": {Architecture: "x86_64", ID: "ami-048b8191da9c5e202", Name: "a <b> & ü\u2028", Public: true},
		"eu-west-1": {Architecture: "x86_64", ID: "ami-0c1f7e3b5a9d24681", Name: `q"uote\`, Public: false},
	}}
	data, err := l.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out := consumertest.TerraformOutputs(t, dir, `
locals { m = jsondecode(file("${path.module}/manifest.json")) }
output "json" { value = jsonencode(local.m) }
output "id" { value = local.m["uc-amd64"]["eu-west-1"].id }
`, "json", "id")
	if out["json"] != string(data) {
		t.Fatalf("kiln:      %s\nterraform: %s", data, out["json"])
	}
	if out["id"] != "ami-0c1f7e3b5a9d24681" {
		t.Fatalf("terraform reads id %q", out["id"])
	}
}
