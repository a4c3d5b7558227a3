package config

import (
	"fmt"
	"regexp"
	"strings"
)

// Deployment values (process commands and environments, stack parameters,
// check URLs, headers and expected values) may hold placeholders in
// braces, filled in when kiln deploys or verifies:
//
//	{project} {deployment} {region} {version} {image_id} {image_name}
//	{inputs.NAME}    an input of the deployment (a secret stays secret)
//	{port.NAME}      a port of the unit itself (process units)
//	{UNIT.OUTPUT}    an output of a unit, e.g. {web.url.http}
//
// "{{" and "}}" stand for literal braces.
var placeholderRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// releasePlaceholders are the placeholders every deployment value may use.
var releasePlaceholders = []string{"project", "deployment", "region", "version", "image_id", "image_name"}

// Placeholders returns the names of the placeholders in s, in order.
func Placeholders(s string) ([]string, error) {
	var names []string
	_, err := ExpandPlaceholders(s, func(name string) (string, error) {
		names = append(names, name)
		return "", nil
	})
	return names, err
}

// ExpandPlaceholders replaces each placeholder in s by what value returns
// for its name; an error of value stops it.
func ExpandPlaceholders(s string, value func(name string) (string, error)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case strings.HasPrefix(s[i:], "{{"), strings.HasPrefix(s[i:], "}}"):
			b.WriteByte(c)
			i += 2
		case c == '}':
			return "", fmt.Errorf("a lone \"}\" at byte %d; write \"}}\" for a literal brace", i)
		case c == '{':
			n := strings.IndexByte(s[i:], '}')
			if n < 0 {
				return "", fmt.Errorf("an unclosed \"{\" at byte %d; write \"{{\" for a literal brace", i)
			}
			name := s[i+1 : i+n]
			if !placeholderRE.MatchString(name) {
				return "", fmt.Errorf("%q is not a placeholder; placeholders look like {version}, {inputs.NAME} or {UNIT.OUTPUT} (write \"{{\" for a literal brace)", "{"+name+"}")
			}
			v, err := value(name)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += n + 1
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}
