package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Dynamic completion: the names a flag or argument takes, read from the
// project (kiln.yaml) and this machine's journal, found as every command
// finds them (-c, KILN_CONFIG, the parents). Completion says nothing when
// there is no project; it never fails loudly.

type completer func(ctx context.Context, cfg *config.Config) []string

func (g *globalOptions) complete(fn completer) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cfg, err := g.loadConfig()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, c := range fn(cmd.Context(), cfg) {
			if strings.HasPrefix(c, toComplete) {
				out = append(out, c)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func useCaseNames(_ context.Context, cfg *config.Config) []string { return cfg.UseCaseNames() }
func channelNames(_ context.Context, cfg *config.Config) []string { return cfg.ChannelNames() }
func regionNames(_ context.Context, cfg *config.Config) []string  { return cfg.Regions }

// runIDs are the runs of this machine's journal, newest first, each with
// its use case and state as the description shells show.
func runIDs(ctx context.Context, cfg *config.Config) []string {
	path := journalPath(cfg)
	if _, err := os.Stat(path); err != nil {
		return nil // completing must not create a journal
	}
	j, err := journal.Open(path)
	if err != nil {
		return nil
	}
	defer j.Close()
	runs, err := j.Runs(ctx)
	if err != nil {
		return nil
	}
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = cobra.CompletionWithDesc(r.ID, fmt.Sprintf("%s %s %s (%s)", r.UseCase, r.Arch, r.State, r.Phase))
	}
	return out
}

// completeUseCases completes the USE_CASE argument (only the first).
func completeUseCases(g *globalOptions) cobra.CompletionFunc {
	c := g.complete(useCaseNames)
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return c(cmd, args, toComplete)
	}
}

func completeRuns(g *globalOptions, cmd *cobra.Command, flags ...string) {
	registerCompletion(g, cmd, runIDs, flags, "run", "resume")
}

func completeRegions(g *globalOptions, cmd *cobra.Command) {
	registerCompletion(g, cmd, regionNames, nil, "region")
}

func completeChannels(g *globalOptions, cmd *cobra.Command, flags ...string) {
	registerCompletion(g, cmd, channelNames, flags, "channel", "from", "to")
}

// registerCompletion completes the flags of cmd with fn: those named in
// flags, or else those of defaults that cmd has.
func registerCompletion(g *globalOptions, cmd *cobra.Command, fn completer, flags []string, defaults ...string) {
	if len(flags) == 0 {
		flags = defaults
	}
	for _, f := range flags {
		if cmd.Flags().Lookup(f) != nil {
			cmd.RegisterFlagCompletionFunc(f, g.complete(fn))
		}
	}
}

// completeTags completes a git ref with the tags of the project's
// repository, newest version first.
func completeTags(g *globalOptions) cobra.CompletionFunc {
	return g.complete(func(ctx context.Context, cfg *config.Config) []string {
		tags, err := manifest.Tags(ctx, cfg.Dir, "")
		if err != nil {
			return nil
		}
		slices.Reverse(tags)
		return tags
	})
}

// completeArch completes --arch with the architectures of the use case
// named by the command's argument (all architectures before one is given).
func completeArch(g *globalOptions, cmd *cobra.Command) {
	cmd.RegisterFlagCompletionFunc("arch", func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cfg, err := g.loadConfig()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, name := range cfg.UseCaseNames() {
			if len(args) > 0 && args[0] != name {
				continue
			}
			for _, a := range cfg.UseCases[name].Architectures {
				if strings.HasPrefix(a, toComplete) && !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
}
