package config

import (
	"slices"
	"strings"
)

// minSecret is the shortest value redacted from logs: shorter ones ("1",
// "on") would blank out ordinary words, and say little about a secret.
const minSecret = 4

// Redacted stands in for a secret in logs.
const Redacted = "[REDACTED]"

// SecretsOf returns the values of the ansible extra_vars of steps, which
// kiln treats as secrets: they go to ansible in a file only the build can
// read, never on a command line, and are blanked out of every log.
func SecretsOf(steps []Step) []string {
	var out []string
	for _, s := range steps {
		if s.Ansible == nil {
			continue
		}
		for _, v := range s.Ansible.ExtraVars {
			if len(v) >= minSecret {
				out = append(out, v)
			}
		}
	}
	// Longest first, so a secret containing another is blanked whole.
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// Redactor returns a replacer that blanks out secrets, or nil when there
// are none.
func Redactor(secrets []string) *strings.Replacer {
	if len(secrets) == 0 {
		return nil
	}
	pairs := make([]string, 0, 2*len(secrets))
	for _, s := range secrets {
		pairs = append(pairs, s, Redacted)
	}
	return strings.NewReplacer(pairs...)
}
