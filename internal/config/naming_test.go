package config

import (
	"slices"
	"testing"
)

func TestExpandName(t *testing.T) {
	v := NameVars{UseCase: "ci", Arch: "arm64", Date: "20261121", AssetID: "kiln-20261121T093012Z-7f3a9c", Version: "1.2"}
	for _, tc := range []struct{ rule, want string }{
		{"{use_case}-{arch}-{asset_id}", "ci-arm64-kiln-20261121T093012Z-7f3a9c"},
		{"{use_case} {version} ({date})", "ci 1.2 (20261121)"},
		{"{arch}{arch}", "arm64arm64"},
		{"plain", "plain"},
		{"{foo}-{use_case}", "{foo}-ci"}, // unknown placeholders stay
		{"{{use_case}}", "{ci}"},
	} {
		if got := ExpandName(tc.rule, v); got != tc.want {
			t.Errorf("ExpandName(%q) = %q, want %q", tc.rule, got, tc.want)
		}
	}
}

func TestParseTemplate(t *testing.T) {
	for _, tc := range []struct {
		rule    string
		literal string
		uses    []string
		err     string
	}{
		{rule: "{use_case}-{arch}", literal: "-", uses: []string{"arch", "use_case"}},
		{rule: "no placeholders", literal: "no placeholders"},
		{rule: "", literal: ""},
		{rule: "a}b", literal: "a}b"},
		{rule: "{", err: `"{" has an unclosed "{"; allowed placeholders: {arch}, {asset_id}, {date}, {use_case}, {version}`},
		{rule: "x-{}", err: `unknown placeholder "{}" in "x-{}"; allowed: {arch}, {asset_id}, {date}, {use_case}, {version}`},
		{rule: "{{use_case}}", err: `unknown placeholder "{{use_case}" in "{{use_case}}"; allowed: {arch}, {asset_id}, {date}, {use_case}, {version}`},
		{rule: "{Arch}", err: `unknown placeholder "{Arch}" in "{Arch}"; allowed: {arch}, {asset_id}, {date}, {use_case}, {version}`},
	} {
		tpl, err := parseTemplate(tc.rule, namePlaceholders)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parseTemplate(%q) error = %v, want %q", tc.rule, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseTemplate(%q): %v", tc.rule, err)
			continue
		}
		if uses := sortedKeys(tpl.uses); tpl.literal != tc.literal || !slices.Equal(uses, tc.uses) {
			t.Errorf("parseTemplate(%q) = %q %q, want %q %q", tc.rule, tpl.literal, uses, tc.literal, tc.uses)
		}
	}
}

func TestImageNameChars(t *testing.T) {
	if r, bad := badImageNameChar("Az09()[]./-_'@ "); bad {
		t.Errorf("rejected %q", r)
	}
	for _, s := range []string{"a!", "a,b", "é", "a\tb", "a:b", "{"} {
		if _, bad := badImageNameChar(s); !bad {
			t.Errorf("accepted %q", s)
		}
	}
}
