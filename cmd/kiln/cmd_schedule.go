package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/gates"
	"github.com/kiln-images/kiln/internal/lockfile"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/schedule"
)

type scheduleOptions struct {
	daemon  bool
	channel string
	count   int
	from    string
	commitOptions
	documentOptions
}

func newScheduleCommand(g *globalOptions) *cobra.Command {
	var o scheduleOptions
	cmd := &cobra.Command{
		Use:   "schedule [--count N] [--from TIME] | --daemon [--channel C]",
		Short: "Show when scheduled releases run, or run them",
		Long: `schedule lists the use cases whose kiln.yaml has a schedule (a five-field cron
expression, in UTC) with the next times each will be released.

With --daemon kiln stays in the foreground and runs "kiln release" of each
scheduled use case and architecture when its time comes, one release at a
time, until it gets SIGINT or SIGTERM (run it as a service, e.g. a systemd
unit). Like cron it does not make up times that passed while it was not
running or still busy with an earlier release; a failed release is logged
and the scheduler goes on. With --commit each release commits its manifest
(--push: and pushes it); with --merge-request or --push-to it records it on
the remote as publish does. Only one scheduler runs per project on a machine.
kiln.yaml is read when it starts.
Exit 0 when stopped while waiting, 2 on error or when stopped during a
release (which "kiln release --resume ID" continues).`,
		Example: `  kiln schedule --count 5
  kiln schedule --daemon --commit --push     # as a service (see README)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			if f.Changed("run") {
				return argError(cmd, "--run is now --daemon (--run ID names a run everywhere else): kiln schedule --daemon")
			}
			if o.daemon && (f.Changed("count") || f.Changed("from")) {
				return argError(cmd, "--count and --from are for listing, not with --daemon")
			}
			if !o.daemon && (f.Changed("channel") || o.commit || o.push || o.mergeRequest || o.pushTo != "") {
				return argError(cmd, "--channel, --commit, --push, --merge-request and --push-to go with --daemon")
			}
			if o.daemon {
				return g.withProject(cmd, func(ctx context.Context, p *project) error { return runScheduler(ctx, g, p, o) })
			}
			return showSchedule(g, o)
		},
	}
	cmd.Flags().BoolVar(&o.daemon, "daemon", false, "stay in the foreground and run the scheduled releases until stopped")
	cmd.Flags().Bool("run", false, "renamed --daemon")
	cmd.Flags().MarkHidden("run")
	cmd.Flags().StringVar(&o.channel, "channel", "latest", "with --daemon: channel to publish to")
	g.addVarFlags(cmd)
	cmd.Flags().IntVar(&o.count, "count", 3, "how many next times to show per use case")
	cmd.Flags().StringVar(&o.from, "from", "", "show the times after this RFC 3339 time (default: now)")
	o.addFlags(cmd)
	o.addDocumentFlags(cmd)
	completeChannels(g, cmd)
	return cmd
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
	rep, err := report.NewSchedule(cfg, from, o.count)
	if err != nil {
		return err
	}
	if g.json() {
		return g.write(rep)
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
	s, unlock, err := newScheduler(ctx, g, p, o.channel, o.commitOptions, o.documentOptions)
	if err != nil {
		return err
	}
	defer unlock()
	return s.Run(ctx)
}

// newScheduler returns the scheduler of the project's scheduled use cases,
// releasing into channel, holding the project's scheduler lock until the
// returned function is called. kiln schedule --daemon and kiln serve
// --schedule run it.
func newScheduler(ctx context.Context, g *globalOptions, p *project, channel string, co commitOptions, do documentOptions) (*schedule.Scheduler, func(), error) {
	if _, err := p.cfg.ManifestPath(channel); err != nil {
		return nil, nil, usageError(fmt.Errorf("--channel: %w", err))
	}
	doc, err := do.documenter(ctx, g, p.cfg, co.commit)
	if err != nil {
		return nil, nil, err
	}
	jobs := schedule.Jobs(p.cfg)
	if len(jobs) == 0 {
		return nil, nil, usageError(fmt.Errorf("no use case in %s has a schedule", p.cfg.Path))
	}
	var keys []string
	for _, j := range jobs {
		u, err := p.cfg.UseCase(j.UseCase)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, u.ManifestKey(j.Arch))
	}
	if err := co.check(ctx, g, p.cfg, channel, keys, channel+": scheduled release (kiln)"); err != nil {
		return nil, nil, err
	}
	lock := filepath.Join(p.cfg.StateDir(), "locks", "schedule.lock")
	unlock, ok, err := lockfile.TryLock(lock)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, fmt.Errorf("another kiln scheduler (kiln schedule --daemon or kiln serve --schedule) works on this project (lock %s)", lock)
	}
	s := &schedule.Scheduler{
		Jobs: jobs,
		Log:  g.logger(),
		Release: func(ctx context.Context, j schedule.Job) (string, error) {
			// The same checks as kiln release, before a run exists.
			if err := p.pl.CheckRelease(ctx, j.UseCase, j.Arch, channel); err != nil {
				return "", err
			}
			gs, _, err := p.pl.ChannelGates(ctx, pipeline.Run{UseCase: j.UseCase, Arch: j.Arch}, channel)
			if err != nil {
				return "", err
			}
			if !gates.Passed(gs) {
				return "", fmt.Errorf("release refused: a gate of channel %s failed; nothing was made\n%s", channel, gates.Failed(gs))
			}
			r, err := p.pl.NewRun(ctx, j.UseCase, j.Arch, "")
			if err != nil {
				return "", err
			}
			unlock, err := p.pl.LockRun(r.ID)
			if err != nil {
				return r.ID, err
			}
			defer unlock()
			ctx, release, err := holdChannel(ctx, g, p, r, channel)
			if err != nil {
				abandonRun(ctx, p, r.ID)
				return r.ID, err
			}
			defer release()
			rep, err := p.pl.Release(ctx, r, channel)
			if err == nil && rep.Publish != nil {
				var keys []string
				if keys, err = runKeys(p, r); err == nil {
					_, err = co.record(ctx, g, p.cfg, channel, keys, publishSubject(r, channel))
				}
			}
			if err == nil && rep.Publish != nil && doc != nil {
				_, err = doc.recordRun(ctx, g, p, r, channel, regionsOf(rep.Publish.Regions))
			}
			return r.ID, err
		},
	}
	return s, unlock, nil
}
