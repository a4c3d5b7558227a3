package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Argument and flag checks in kiln's words, instead of cobra's ("accepts 1
// arg(s), received 0"): each names the command, what is wrong, and its
// usage line.

// usageLine is how a command is called, e.g. "kiln build USE_CASE [--arch A]".
func usageLine(cmd *cobra.Command) string {
	use := cmd.Use
	if p := cmd.Parent(); p != nil {
		use = p.CommandPath() + " " + use
	}
	return use
}

func argError(cmd *cobra.Command, format string, args ...any) error {
	return usageError(fmt.Errorf("%s: %s\nusage: %s (see kiln %s --help)", cmd.CommandPath(),
		fmt.Sprintf(format, args...), usageLine(cmd), strings.TrimPrefix(cmd.CommandPath(), "kiln ")))
}

// noArgs accepts no positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return argError(cmd, "takes no arguments, got %q", strings.Join(args, " "))
	}
	return nil
}

// exactArgs accepts exactly the named arguments.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return argError(cmd, "missing %s", strings.Join(names[len(args):], " and "))
		case len(args) > len(names):
			return argError(cmd, "too many arguments: %q after %s", strings.Join(args[len(names):], " "), strings.Join(names, " "))
		}
		return nil
	}
}

// maxArgs accepts up to the named arguments.
func maxArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > len(names) {
			return argError(cmd, "too many arguments: %q (it takes %s at most)", strings.Join(args[len(names):], " "), strings.Join(names, " "))
		}
		return nil
	}
}

// exactlyOne requires exactly one of the flags.
func exactlyOne(cmd *cobra.Command, flags ...string) error {
	set := changed(cmd, flags...)
	switch {
	case len(set) == 0:
		return argError(cmd, "give one of %s", dashes(flags, " or "))
	case len(set) > 1:
		return argError(cmd, "%s cannot be given together; choose one", dashes(set, " and "))
	}
	return nil
}

// atMostOne refuses more than one of the flags.
func atMostOne(cmd *cobra.Command, flags ...string) error {
	if set := changed(cmd, flags...); len(set) > 1 {
		return argError(cmd, "%s cannot be given together; choose one", dashes(set, " and "))
	}
	return nil
}

// required requires every one of the flags.
func required(cmd *cobra.Command, flags ...string) error {
	var missing []string
	for _, f := range flags {
		if !cmd.Flags().Changed(f) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return argError(cmd, "missing %s", dashes(missing, " and "))
	}
	return nil
}

func changed(cmd *cobra.Command, flags ...string) []string {
	var set []string
	for _, f := range flags {
		if cmd.Flags().Changed(f) {
			set = append(set, f)
		}
	}
	return set
}

func dashes(flags []string, sep string) string {
	out := make([]string, len(flags))
	for i, f := range flags {
		out[i] = "--" + f
	}
	return strings.Join(out, sep)
}

// subcommandArgs refuses arguments of a command that only groups others: an
// argument there is a misspelt subcommand.
func subcommandArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q", args[0])
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only on its own path
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return argError(cmd, "%s", msg)
}
