package config

import (
	"fmt"
	"slices"
	"strings"
)

// NameVars are the values of the naming placeholders.
type NameVars struct {
	UseCase string // {use_case}: the use case's name
	Arch    string // {arch}: x86_64 or arm64
	Date    string // {date}: the run's UTC date, e.g. "20261121"
	AssetID string // {asset_id}: the run's asset id
	Version string // {version}: the release's version
	// Vars are the values of {var.NAME} placeholders (variables.go).
	Vars map[string]string
}

// ExpandName returns rule with each placeholder replaced by its value.
// Unknown placeholders are left as they are; validation rejects them.
func ExpandName(rule string, v NameVars) string {
	pairs := []string{
		"{use_case}", v.UseCase,
		"{arch}", v.Arch,
		"{date}", v.Date,
		"{asset_id}", v.AssetID,
		"{version}", v.Version,
	}
	for name, value := range v.Vars {
		pairs = append(pairs, "{var."+name+"}", value)
	}
	return strings.NewReplacer(pairs...).Replace(rule)
}

// Placeholders allowed in naming rules and in backend.aws.ssm_parameters.
var (
	namePlaceholders = []string{"arch", "asset_id", "date", "use_case", "version"}
	ssmPlaceholders  = []string{"arch", "channel", "use_case"}
)

// template is a naming rule split into its literal text and placeholders.
type template struct {
	literal string          // the rule with its placeholders removed
	uses    map[string]bool // the placeholders it contains
}

// parseTemplate splits rule and checks that each placeholder is one of
// allowed.
func parseTemplate(rule string, allowed []string) (template, error) {
	t := template{uses: map[string]bool{}}
	var lit strings.Builder
	rest := rule
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			lit.WriteString(rest)
			break
		}
		lit.WriteString(rest[:open])
		n := strings.IndexByte(rest[open:], '}')
		if n < 0 {
			return t, fmt.Errorf("%q has an unclosed \"{\"; allowed placeholders: %s", rule, listPlaceholders(allowed))
		}
		name := rest[open+1 : open+n]
		if !slices.Contains(allowed, name) {
			return t, fmt.Errorf("unknown placeholder %q in %q; allowed: %s", "{"+name+"}", rule, listPlaceholders(allowed))
		}
		t.uses[name] = true
		rest = rest[open+n+1:]
	}
	t.literal = lit.String()
	return t, nil
}

func listPlaceholders(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "{" + n + "}"
	}
	return strings.Join(out, ", ")
}

// imageNameChar reports whether r may appear in an image name: the EC2
// rules, which the local backend shares so that a config works on both.
func imageNameChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' ||
		strings.ContainsRune("()[]./-_'@ ", r)
}

// badImageNameChar returns the first character of s not allowed in image
// names, if any.
func badImageNameChar(s string) (rune, bool) {
	for _, r := range s {
		if !imageNameChar(r) {
			return r, true
		}
	}
	return 0, false
}

const imageNameChars = `letters, digits, spaces and ( ) [ ] . / - _ ' @`

// Image names must be 3 to 128 characters long once expanded.
const (
	minImageName = 3
	maxImageName = 128
)

// sampleVars are placeholder values of typical length, for checking the
// length of expanded names: asset ids have the form
// kiln-20261121T093012Z-7f3a9c.
func sampleVars(u *UseCase, arch string) NameVars {
	return NameVars{
		UseCase: u.Name,
		Arch:    arch,
		Date:    "20261121",
		AssetID: "kiln-20261121T093012Z-7f3a9c",
		Version: u.Version,
	}
}
