package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const (
	awsIDForm   = "ami- followed by 8 or 17 lowercase hex digits"
	awsRegForm  = "an AWS region name like us-east-1, us-gov-west-1 or us-isob-east-1"
	localIDForm = "img- followed by 17 lowercase hex digits"
	localReg    = "a lowercase letter, then up to 62 lowercase letters, digits or hyphens"
)

func TestValidate(t *testing.T) {
	with := func(f func(*Entry)) Entry {
		e := designEntry
		f(&e)
		return e
	}
	localEntry := with(func(e *Entry) { e.ID = "img-0123456789abcdef0" })
	tests := []struct {
		name  string
		m     Manifest
		rules Rules
		want  []string
	}{
		{"design", Manifest{"aws-linux-ephemeral": {"us-east-1": designEntry}}, AWSRules, nil},
		{"empty", Manifest{}, AWSRules, nil},
		{"short id", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.ID = "ami-0123abcd" })}}, AWSRules, nil},
		{"arm64", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.Architecture = "arm64" })}}, AWSRules, nil},
		{"deprecation utc", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.DeprecationTime = "2027-01-31T00:00:00Z" })}}, AWSRules, nil},
		{"deprecation offset", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.DeprecationTime = "2027-01-31T00:00:00+02:00" })}}, AWSRules, nil},
		{"gov, iso and china regions", Manifest{"uc": {"us-gov-west-1": designEntry, "us-isob-east-1": designEntry, "us-iso-east-1": designEntry, "cn-north-1": designEntry}}, AWSRules, nil},

		{"architecture amd64", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.Architecture = "amd64" })}}, AWSRules,
			[]string{`f.json: uc.us-east-1.architecture: architecture "amd64" is not allowed; use x86_64 or arm64`}},
		{"architecture empty", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.Architecture = "" })}}, AWSRules,
			[]string{`f.json: uc.us-east-1.architecture: architecture "" is not allowed; use x86_64 or arm64`}},
		{"deprecation date only", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.DeprecationTime = "2027-01-31" })}}, AWSRules,
			[]string{`f.json: uc.us-east-1.deprecation_time: deprecation_time "2027-01-31" is not an RFC 3339 time like 2027-01-31T00:00:00Z; leave it "" for none`}},
		{"deprecation month 13", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.DeprecationTime = "2027-13-01T00:00:00Z" })}}, AWSRules,
			[]string{`f.json: uc.us-east-1.deprecation_time: deprecation_time "2027-13-01T00:00:00Z" is not an RFC 3339 time like 2027-01-31T00:00:00Z; leave it "" for none`}},
		{"id too short", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.ID = "ami-123" })}}, AWSRules,
			[]string{`f.json: uc.us-east-1.id: id "ami-123" is not valid; want ` + awsIDForm}},
		{"id nine digits", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.ID = "ami-0123abcde" })}}, AWSRules,
			[]string{`f.json: uc.us-east-1.id: id "ami-0123abcde" is not valid; want ` + awsIDForm}},
		{"id uppercase", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.ID = "ami-048B8191DA9C5E202" })}}, AWSRules,
			[]string{`f.json: uc.us-east-1.id: id "ami-048B8191DA9C5E202" is not valid; want ` + awsIDForm}},
		{"local id under aws", Manifest{"uc": {"us-east-1": localEntry}}, AWSRules,
			[]string{`f.json: uc.us-east-1.id: id "img-0123456789abcdef0" is not valid; want ` + awsIDForm}},
		{"region case", Manifest{"uc": {"US-East-1": designEntry}}, AWSRules,
			[]string{`f.json: uc.US-East-1: region "US-East-1" is not valid; want ` + awsRegForm}},
		{"region without number", Manifest{"uc": {"us-east": designEntry}}, AWSRules,
			[]string{`f.json: uc.us-east: region "us-east" is not valid; want ` + awsRegForm}},
		{"region empty", Manifest{"uc": {"": designEntry}}, AWSRules,
			[]string{`f.json: uc."": region "" is not valid; want ` + awsRegForm}},
		{"name with escape", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.Name = "ubuntu\x1b[2J" })}}, AWSRules,
			[]string{`f.json: uc.us-east-1.name: name "ubuntu\x1b[2J" holds control characters (such as NUL or ESC); image names never do`}},
		{"use case with NUL", Manifest{"u\x00c": {"us-east-1": designEntry}}, AWSRules,
			[]string{`f.json: "u\x00c": use case name "u\x00c" holds control characters (such as NUL or ESC), which no consumer should be handed`}},
		{"name empty", Manifest{"uc": {"us-east-1": with(func(e *Entry) { e.Name = "" })}}, AWSRules,
			[]string{`f.json: uc.us-east-1.name: name is empty`}},
		{"use case empty", Manifest{"": {"us-east-1": designEntry, "eu-west-1": designEntry}}, AWSRules,
			[]string{`f.json: "": use case name is empty`}},

		{"local", Manifest{"uc": {"store-a": localEntry, "b": localEntry, "z" + strings.Repeat("9", 62): localEntry}}, LocalRules, nil},
		{"local id", Manifest{"uc": {"store-a": designEntry}}, LocalRules,
			[]string{`f.json: uc.store-a.id: id "ami-048b8191da9c5e202" is not valid; want ` + localIDForm}},
		{"local region", Manifest{"uc": {"Store": localEntry, "9a": localEntry, "a" + strings.Repeat("b", 63): localEntry}}, LocalRules,
			[]string{
				`f.json: uc.9a: region "9a" is not valid; want ` + localReg,
				`f.json: uc.Store: region "Store" is not valid; want ` + localReg,
				`f.json: uc.a` + strings.Repeat("b", 63) + `: region "a` + strings.Repeat("b", 39) + `…" is not valid; want ` + localReg,
			}},
		{"zero rules skip id and region", Manifest{"uc": {"ANY region": with(func(e *Entry) { e.ID = "whatever" })}}, Rules{}, nil},
		{"zero rules keep the rest", Manifest{"uc": {"r": with(func(e *Entry) { e.Architecture = "i386" })}}, Rules{},
			[]string{`f.json: uc.r.architecture: architecture "i386" is not allowed; use x86_64 or arm64`}},

		{"all problems at once", Manifest{
			"b": {"us-east-1": with(func(e *Entry) { e.Name = ""; e.Architecture = "ppc" })},
			"a": {"nowhere": with(func(e *Entry) { e.ID = "ami-x"; e.DeprecationTime = "soon" }), "us-east-1": designEntry},
		}, AWSRules, []string{
			`f.json: a.nowhere: region "nowhere" is not valid; want ` + awsRegForm,
			`f.json: a.nowhere.deprecation_time: deprecation_time "soon" is not an RFC 3339 time like 2027-01-31T00:00:00Z; leave it "" for none`,
			`f.json: a.nowhere.id: id "ami-x" is not valid; want ` + awsIDForm,
			`f.json: b.us-east-1.architecture: architecture "ppc" is not allowed; use x86_64 or arm64`,
			`f.json: b.us-east-1.name: name is empty`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.Validate("f.json", tt.rules)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Validate = %v; want Errors", err)
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Fatalf("Validate:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestCheckPositions(t *testing.T) {
	in := `{
  "uc": {
    "US-EAST-1": {
      "architecture": "x86_64",
      "deprecation_time": "",
      "id": "ami-nothex",
      "name": "",
      "public": true
    }
  },
  "": {
    "us-east-1": ` + compact + `
  }
}
`
	_, err := Check("f.json", []byte(in), AWSRules)
	want := strings.Join([]string{
		`f.json:11:3: "": use case name is empty`,
		`f.json:3:5: uc.US-EAST-1: region "US-EAST-1" is not valid; want ` + awsRegForm,
		`f.json:6:13: uc.US-EAST-1.id: id "ami-nothex" is not valid; want ` + awsIDForm,
		`f.json:7:15: uc.US-EAST-1.name: name is empty`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("Check:\n%v\nwant:\n%s", err, want)
	}

	// Shape errors come back as from Decode, and stop before validation.
	if _, err := Check("f.json", []byte(`{"uc": {"nowhere": 1}}`), AWSRules); err == nil ||
		!strings.HasPrefix(err.Error(), "f.json:1:20: uc.nowhere: must be an object") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Check of a misshapen file: %v", err)
	}

	m, err := Check("design.json", readTestdata(t, "design.json"), AWSRules)
	if err != nil || len(m) != 1 {
		t.Fatalf("Check(design.json) = %v, %v", m, err)
	}
}

func TestRuleFunctions(t *testing.T) {
	tests := []struct {
		f    func(string) bool
		name string
		in   string
		want bool
	}{
		{ValidAWSImageID, "aws id", "ami-048b8191da9c5e202", true},
		{ValidAWSImageID, "aws id", "ami-0123abcd", true},
		{ValidAWSImageID, "aws id", "ami-048b8191da9c5e20", false},
		{ValidAWSImageID, "aws id", "ami-048b8191da9c5e2022", false},
		{ValidAWSImageID, "aws id", "ami-048b8191da9c5e20g", false},
		{ValidAWSImageID, "aws id", " ami-0123abcd", false},
		{ValidAWSImageID, "aws id", "ami-0123abcd\n", false},
		{ValidAWSImageID, "aws id", "snap-0123abcd", false},
		{ValidAWSRegion, "aws region", "us-east-1", true},
		{ValidAWSRegion, "aws region", "ap-southeast-12", true},
		{ValidAWSRegion, "aws region", "us-gov-west-1", true},
		{ValidAWSRegion, "aws region", "us-iso-east-1", true},
		{ValidAWSRegion, "aws region", "us-isob-east-1", true},
		{ValidAWSRegion, "aws region", "us-isobc-east-1", false},
		{ValidAWSRegion, "aws region", "us-east-1a", false},
		{ValidAWSRegion, "aws region", "usa-east-1", false},
		{ValidAWSRegion, "aws region", "us-east-١", false}, // Arabic-Indic digit: \d must be ASCII
		{ValidAWSRegion, "aws region", "", false},
		{ValidLocalImageID, "local id", "img-0123456789abcdef0", true},
		{ValidLocalImageID, "local id", "img-0123456789abcdef", false},
		{ValidLocalImageID, "local id", "img-0123456789ABCDEF0", false},
		{ValidLocalRegion, "local region", "a", true},
		{ValidLocalRegion, "local region", "store-2", true},
		{ValidLocalRegion, "local region", "a" + strings.Repeat("-", 62), true},
		{ValidLocalRegion, "local region", "a" + strings.Repeat("-", 63), false},
		{ValidLocalRegion, "local region", "-a", false},
		{ValidLocalRegion, "local region", "a_b", false},
		{ValidLocalRegion, "local region", "", false},
	}
	for _, tt := range tests {
		if got := tt.f(tt.in); got != tt.want {
			t.Errorf("%s %q: valid = %v; want %v", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestValidateTooManyErrors(t *testing.T) {
	m := Manifest{}
	for i := range 150 {
		m.Set("uc", fmt.Sprintf("region-%03d", i), Entry{Architecture: "x86_64", ID: "bad", Name: "n"})
	}
	var errs Errors
	if err := m.Validate("f.json", LocalRules); !errors.As(err, &errs) {
		t.Fatalf("Validate = %v", err)
	}
	if len(errs) != maxErrors+1 {
		t.Fatalf("got %d errors; want %d", len(errs), maxErrors+1)
	}
	if first := errs[0].Error(); first != `f.json: uc.region-000.id: id "bad" is not valid; want `+localIDForm {
		t.Errorf("first error = %q", first)
	}
	if last := errs[maxErrors].Error(); last != "f.json: more than 100 errors; stopping" {
		t.Errorf("last error = %q", last)
	}
}
