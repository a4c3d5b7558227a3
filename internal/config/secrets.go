package config

import (
	"slices"
)

// minSecret is the shortest value redacted from logs: shorter ones ("1",
// "on") would blank out ordinary words, and say little about a secret.
const minSecret = 4

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
