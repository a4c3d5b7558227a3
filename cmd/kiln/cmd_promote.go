package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
)

type promoteOptions struct {
	from, to string
	apply    bool
	commitOptions
	documentOptions
}

func newPromoteCommand(g *globalOptions) *cobra.Command {
	o := promoteOptions{from: "latest", to: "stable"}
	cmd := &cobra.Command{
		Use:   "promote USE_CASE --from latest --to stable [--apply]",
		Short: "Copy a use case's entries from one channel to another, behind gates",
		Long: `promote checks gates on the use case's entries in the --from channel, each
reported by name: complete (every target region has an entry), available,
tested (the run passed kiln test), published (public or shared per policy),
not-deprecated, and interval (the --to channel's min_interval since its last
change, from git history or else the file's time). With every gate passed and
--apply it writes the --to manifest (and, with SSM parameters configured, flips
them all or none) and shows the diff.
Exit 0 when promoted (or promotable, without --apply), 1 when a gate failed, 2 on error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runPromote(ctx, g, p, args[0], o) })
		},
	}
	cmd.Flags().StringVar(&o.from, "from", o.from, "channel to promote from")
	cmd.Flags().StringVar(&o.to, "to", o.to, "channel to promote to")
	cmd.Flags().BoolVar(&o.apply, "apply", false, "write the target manifest (without it, only check and show the diff)")
	o.addFlags(cmd)
	o.addDocumentFlags(cmd)
	return cmd
}

type promoteReport struct {
	Schema string `json:"schema"`
	pipeline.PromoteReport
	Commit string `json:"commit,omitempty"` // with --commit: the manifest's commit
	documentReport
}

func runPromote(ctx context.Context, g *globalOptions, p *project, useCase string, o promoteOptions) error {
	for _, ch := range []string{o.from, o.to} {
		if _, err := p.cfg.ManifestPath(ch); err != nil {
			return usageError(err)
		}
	}
	path, _ := p.cfg.ManifestPath(o.to)
	if err := o.check(ctx, path); err != nil {
		return err
	}
	doc, err := o.documenter(ctx, g, p.cfg, o.commit)
	if err != nil {
		return err
	}
	last, err := lastChange(ctx, p.cfg, o.to)
	if err != nil {
		return err
	}
	rep, err := p.pl.Promote(ctx, useCase, o.from, o.to, last, o.apply)
	if err != nil {
		return err
	}
	var commit string
	var dr documentReport
	if rep.Applied {
		subject := fmt.Sprintf("%s: promote %s from %s", o.to, useCase, o.from)
		if commit, err = o.record(ctx, g, path, rep.Changes, subject); err != nil {
			return err
		}
		if doc != nil {
			if dr, err = doc.recordPromotion(ctx, g, p.cfg, useCase, o.from, o.to, subject, rep); err != nil {
				return err
			}
		}
	}
	if g.format == output.JSON {
		if err := output.WriteJSON(g.streams.out, promoteReport{Schema: "kiln.promote/v1", PromoteReport: rep, Commit: commit, documentReport: dr}); err != nil {
			return err
		}
	} else {
		t := output.NewTable(g.streams.out, "GATE", "RESULT", "DETAIL")
		for _, gt := range rep.Gates {
			res := "pass"
			if !gt.Passed {
				res = "FAIL"
			}
			if len(gt.Detail) == 0 {
				t.Row(gt.Name, res, "")
			}
			for _, d := range gt.Detail {
				t.Row(gt.Name, res, d)
			}
		}
		t.Flush()
		fmt.Fprintln(g.streams.out)
		if len(rep.Changes) == 0 {
			fmt.Fprintf(g.streams.out, "channel %s already has these entries\n", o.to)
		} else {
			manifest.FormatDiff(g.streams.out, rep.Changes)
		}
	}
	switch {
	case !rep.Passed():
		return findings("promotion of %s from %s to %s refused: a gate failed; nothing was changed", useCase, o.from, o.to)
	case !o.apply && len(rep.Changes) > 0:
		fmt.Fprintln(g.streams.err, "all gates pass; rerun with --apply to write it")
	}
	return nil
}

// lastChange is when a channel's manifest last changed: its newest git
// commit, or the file's modification time when git does not track it.
func lastChange(ctx context.Context, cfg *config.Config, ch string) (time.Time, error) {
	path, err := cfg.ManifestPath(ch)
	if err != nil {
		return time.Time{}, err
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	} else if err != nil {
		return time.Time{}, err
	}
	rel, err := filepath.Rel(cfg.Dir, path)
	if err != nil {
		return st.ModTime(), nil
	}
	revs, err := manifest.History(ctx, cfg.Dir, "./"+filepath.ToSlash(rel), 1)
	if err != nil || len(revs) == 0 {
		return st.ModTime(), nil // not a git repository, or not committed yet
	}
	return revs[0].Date, nil
}
