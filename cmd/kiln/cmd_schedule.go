package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/lockfile"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/schedule"
)

type scheduleOptions struct {
	run     bool
	channel string
	count   int
	from    string
	commitOptions
}

func newScheduleCommand(g *globalOptions) *cobra.Command {
	var o scheduleOptions
	cmd := &cobra.Command{
		Use:   "schedule [--count N] [--from TIME] | --run [--channel C]",
		Short: "Show when scheduled releases run, or run them",
		Long: `schedule lists the use cases whose kiln.yaml has a schedule (a five-field cron
expression, in UTC) with the next times each will be released.

With --run kiln stays in the foreground and runs "kiln release" of each
scheduled use case and architecture when its time comes, one release at a
time, until it gets SIGINT or SIGTERM (run it as a service, e.g. a systemd
unit). Like cron it does not make up times that passed while it was not
running or still busy with an earlier release; a failed release is logged
and the scheduler goes on. With --commit each release commits its manifest
(--push: and pushes it). Only one scheduler runs per project on a machine.
kiln.yaml is read when it starts.
Exit 0 when stopped while waiting, 2 on error or when stopped during a
release (which "kiln release --resume ID" continues).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if o.run && (f.Changed("count") || f.Changed("from")) {
				return usageError(errors.New("--count and --from are for listing, not with --run"))
			}
			if !o.run && (f.Changed("channel") || o.commit || o.push) {
				return usageError(errors.New("--channel, --commit and --push go with --run"))
			}
			if o.run {
				return g.withProject(cmd, func(ctx context.Context, p *project) error { return runScheduler(ctx, g, p, o) })
			}
			return showSchedule(g, o)
		},
	}
	cmd.Flags().BoolVar(&o.run, "run", false, "run the scheduled releases until stopped")
	g.addVarFlags(cmd)
	cmd.Flags().StringVar(&o.channel, "channel", "latest", "with --run: channel to publish to")
	cmd.Flags().IntVar(&o.count, "count", 3, "how many next times to show per use case")
	cmd.Flags().StringVar(&o.from, "from", "", "show the times after this RFC 3339 time (default: now)")
	o.addFlags(cmd)
	return cmd
}

type scheduleReport struct {
	Schema string          `json:"schema"`
	From   time.Time       `json:"from"`
	Jobs   []scheduleEntry `json:"jobs"`
}

type scheduleEntry struct {
	schedule.Job
	Next []time.Time `json:"next"`
}

func showSchedule(g *globalOptions, o scheduleOptions) error {
	if o.count < 1 || o.count > 100 {
		return usageError(fmt.Errorf("--count %d: give 1 to 100", o.count))
	}
	from := time.Now().UTC()
	if o.from != "" {
		t, err := time.Parse(time.RFC3339, o.from)
		if err != nil {
			return usageError(fmt.Errorf("--from %q: not an RFC 3339 time such as 2026-11-21T03:00:00Z", o.from))
		}
		from = t.UTC()
	}
	cfg, err := g.loadConfig()
	if err != nil {
		return err
	}
	rep := scheduleReport{Schema: "kiln.schedule/v1", From: from, Jobs: []scheduleEntry{}}
	for _, j := range schedule.Jobs(cfg) {
		next, err := j.Times(from, o.count)
		if err != nil {
			return err
		}
		rep.Jobs = append(rep.Jobs, scheduleEntry{Job: j, Next: next})
	}
	if g.format == output.JSON {
		return output.WriteJSON(g.streams.out, rep)
	}
	if len(rep.Jobs) == 0 {
		fmt.Fprintf(g.streams.out, "no use case in %s has a schedule\n", cfg.Path)
		return nil
	}
	t := output.NewTable(g.streams.out, "USE CASE", "ARCH", "SCHEDULE (UTC)", "NEXT")
	for _, e := range rep.Jobs {
		times := make([]string, len(e.Next))
		for i, n := range e.Next {
			times[i] = n.Format(time.RFC3339)
		}
		t.Row(e.UseCase, e.Arch, e.Cron, strings.Join(times, ", "))
	}
	return t.Flush()
}

func runScheduler(ctx context.Context, g *globalOptions, p *project, o scheduleOptions) error {
	path, err := p.cfg.ManifestPath(o.channel)
	if err != nil {
		return usageError(fmt.Errorf("--channel: %w", err))
	}
	if err := o.check(ctx, path); err != nil {
		return err
	}
	jobs := schedule.Jobs(p.cfg)
	if len(jobs) == 0 {
		return usageError(fmt.Errorf("no use case in %s has a schedule", p.cfg.Path))
	}
	lock := filepath.Join(p.cfg.StateDir(), "locks", "schedule.lock")
	unlock, ok, err := lockfile.TryLock(lock)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("another kiln schedule --run works on this project (lock %s)", lock)
	}
	defer unlock()
	s := &schedule.Scheduler{
		Jobs: jobs,
		Log:  g.logger(),
		Release: func(ctx context.Context, j schedule.Job) (string, error) {
			r, err := p.pl.NewRun(ctx, j.UseCase, j.Arch, "")
			if err != nil {
				return "", err
			}
			unlock, err := p.pl.LockRun(r.ID)
			if err != nil {
				return r.ID, err
			}
			defer unlock()
			rep, err := p.pl.Release(ctx, r, o.channel)
			if err == nil && rep.Publish != nil {
				_, err = o.record(ctx, g, rep.Publish.Manifest, rep.Publish.Changes, publishSubject(r, o.channel))
			}
			return r.ID, err
		},
	}
	return s.Run(ctx)
}
