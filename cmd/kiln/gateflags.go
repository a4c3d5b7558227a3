package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/gates"
	"github.com/kiln-images/kiln/internal/journal"
)

// gateOptions are the flags that let a failed channel gate pass, on the
// record: the commands that write a channel (publish, release, promote)
// take them. schedule --daemon checks the gates too and never overrides
// one.
type gateOptions struct {
	override []string
	reason   string
}

func (o *gateOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&o.override, "override-gate", nil,
		"let this failed gate pass (repeatable; interval, newer, complete, published, not-deprecated); needs --reason")
	cmd.Flags().StringVar(&o.reason, "reason", "", "with --override-gate: why; recorded in the journal and the commit message")
}

// parse checks the flags.
func (o gateOptions) parse() (gates.Overrides, error) {
	ov, err := gates.ParseOverrides(o.override, o.reason)
	if err != nil {
		return nil, usageError(err)
	}
	return ov, nil
}

// enforce applies the overrides to gs, records each override it used in
// the journal (what, where, why) and returns an error naming the gates
// that still fail (exit 1: a finding). what names the write, such as
// "publish run kiln-… to latest".
func enforce(ctx context.Context, g *globalOptions, p *project, ov gates.Overrides, gs []gates.Gate, channel, what string) error {
	used := ov.Apply(gs)
	if !gates.Passed(gs) {
		return findings("%s refused: a gate of channel %s failed; nothing was changed\n%s\n(--override-gate NAME --reason TEXT lets a gate pass, on the record)",
			what, channel, gates.Failed(gs))
	}
	return recordOverrides(ctx, g, p, used, channel, what)
}

// recordOverrides writes the overrides used to the journal, and says so.
func recordOverrides(ctx context.Context, g *globalOptions, p *project, used []gates.Gate, channel, what string) error {
	for _, gt := range used {
		detail := fmt.Sprintf("gate %s overridden for %s: %s (it failed: %s)", gt.Name, what, gt.Overridden, strings.Join(gt.Detail, "; "))
		if err := p.journal.Record(ctx, journal.Event{Kind: "override-gate", Subject: "channel " + channel, Detail: detail}); err != nil {
			return err
		}
		fmt.Fprintf(g.streams.err, "warning: %s\n", detail)
	}
	return nil
}
