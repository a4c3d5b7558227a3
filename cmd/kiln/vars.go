package main

import (
	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/vars"
)

// varOptions are the --var and --var-file flags of the commands that use
// recipe variables (build, replicate, release, schedule).
type varOptions struct {
	flags []string
	files []string
}

// addVarFlags gives cmd the --var and --var-file flags.
func (g *globalOptions) addVarFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&g.vars.flags, "var", nil, "set a recipe variable: NAME=VALUE (repeatable; overrides --var-file and KILN_VAR_NAME)")
	f.StringArrayVar(&g.vars.files, "var-file", nil, "read recipe variables from a YAML file of NAME: VALUE lines (repeatable)")
}

// resolveVars resolves the project's variables for this command and masks
// the secret ones in everything kiln prints from now on.
func (g *globalOptions) resolveVars(cfg *config.Config) (*vars.Set, error) {
	set, err := vars.Resolve(cfg, vars.Sources{Flags: g.vars.flags, Files: g.vars.files})
	if err != nil {
		return nil, usageError(err)
	}
	if g.streams.secrets != nil {
		g.streams.secrets.Add(set.Secrets()...)
	}
	return set, nil
}
