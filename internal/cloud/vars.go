package cloud

import "maps"

// ExtraVars is what an Ansible provisioning step gets as extra vars on
// every backend: the recipe's variables, with the step's own extra_vars
// over them (the more specific setting wins). Backends hand them to
// ansible-playbook in a file only the build can read (-e @FILE), never on
// its command line.
func ExtraVars(vars []Var, step map[string]string) map[string]string {
	out := map[string]string{}
	for _, v := range vars {
		out[v.Name] = v.Value
	}
	maps.Copy(out, step)
	return out
}
