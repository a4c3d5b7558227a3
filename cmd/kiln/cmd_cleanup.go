package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/lockfile"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/teardown"
)

type cleanupOptions struct {
	run       string
	orphans   bool
	olderThan config.Duration
	gitRefs   string
	apply     bool
	yes       bool
	force     bool
}

// abandonAfter is how long a run no journal here knows of counts as possibly
// in progress on another machine.
const abandonAfter = time.Hour

func newCleanupCommand(g *globalOptions) *cobra.Command {
	var o cleanupOptions
	cmd := &cobra.Command{
		Use:   "cleanup (--run ID | --orphans [--older-than D]) [--apply]",
		Short: "Delete a run's resources, or every orphan, in dependency order",
		Long: `cleanup finds resources by their tags (kiln:managed=true and, with --run, the
run's asset id), plans what to delete and prints the plan. Only with --apply it
deletes them: in dependency order, regions in parallel, retrying what is not
yet deletable; then it lists again and reports each resource as deleted,
retained or still present.

Never deleted: images any channel manifest references (the working tree, and
with --git-refs the manifests at matching git tags) and their snapshots;
resources tagged kiln:retain=true; stack resources with a Retain policy; runs
a kiln process on this machine is working on; runs this machine's journal does
not know whose newest resource is younger than 1h (they may be in progress
elsewhere; --force overrides this, never the lock of a live process).
--orphans means the resources of every finished or abandoned run that no
manifest references.

Personal deployments (kiln deploy --new) past their expiry are orphans too:
--orphans plans their teardown as kiln destroy does, and --apply destroys
them with the same rules (what is kept, the order, the verification; a
protected one is refused).

Exit 0 when nothing that should go remains, 1 when something does (including
a plan not yet applied), 2 on error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runCleanup(ctx, g, p, o) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.run, "run", "", "the run whose resources to delete")
	f.BoolVar(&o.orphans, "orphans", false, "every kiln-managed resource of finished or abandoned runs no manifest references")
	f.Var(durationFlag{&o.olderThan}, "older-than", "only resources older than this (e.g. 24h, 7d)")
	f.StringVar(&o.gitRefs, "git-refs", "", "also protect images referenced by manifests at git tags matching this pattern (e.g. 'v*')")
	f.BoolVar(&o.apply, "apply", false, "delete (without it, only print the plan)")
	f.BoolVar(&o.yes, "yes", false, "confirm a plan bigger than cleanup.confirm_above without asking")
	f.BoolVar(&o.force, "force", false, "also clean runs that may be in progress on another machine")
	cmd.MarkFlagsMutuallyExclusive("run", "orphans")
	cmd.MarkFlagsOneRequired("run", "orphans")
	return cmd
}

type cleanupReport struct {
	Schema    string          `json:"schema"`
	Applied   bool            `json:"applied"`
	Plan      []assets.Item   `json:"plan"`
	Results   []assets.Result `json:"results,omitempty"`
	Summary   map[string]int  `json:"summary"`
	Unplanned int             `json:"unplanned"`
	// Expired are the personal deployments past their expiry (--orphans):
	// each one's teardown, planned or done.
	Expired []*teardown.Report `json:"expired_deployments,omitempty"`
}

func runCleanup(ctx context.Context, g *globalOptions, p *project, o cleanupOptions) error {
	f := cloud.Filter{}
	if o.run != "" {
		if _, err := journal.ParseAssetID(o.run); err != nil {
			return usageError(fmt.Errorf("--run: %w", err))
		}
		f.Tags = map[string]string{cloud.TagAssetID: o.run}
	}
	refs, err := channel.References(ctx, p.cfg, o.gitRefs)
	if err != nil {
		return err
	}
	inv := assets.Scan(ctx, p.backend, p.cfg.Regions, f, len(p.cfg.Regions))
	if err := inv.Err(); err != nil {
		return err
	}
	plan := assets.MakePlan(inv.Assets, assets.Policy{
		Referenced: func(region, id string) string {
			if w := refs.Where(region, id); w != "" {
				return "referenced by " + w
			}
			return ""
		},
		InProgress: inProgress(ctx, p, p.pl, o.force),
		OlderThan:  o.olderThan.Std(),
		Now:        time.Now(),
	})
	var expired *expiredDeployments
	if o.orphans {
		// Personal deployments past their expiry are orphans too.
		if expired, err = findExpired(ctx, g, p); err != nil {
			return err
		}
	}
	return carryOut(ctx, g, p, "kiln.cleanup/v1", plan, f, o.apply, o.yes, expired)
}

// carryOut prints a deletion plan, or with apply confirms it if it is big,
// applies it, verifies and prints what became of each resource. cleanup
// and prune share it.
func carryOut(ctx context.Context, g *globalOptions, p *project, schema string, plan assets.Plan, f cloud.Filter, apply, yes bool, expired *expiredDeployments) error {
	rep := cleanupReport{Schema: schema, Plan: plan.Items, Summary: map[string]int{}}
	if expired == nil {
		expired = &expiredDeployments{}
	} else {
		rep.Expired = expired.reports
	}
	if rep.Plan == nil {
		rep.Plan = []assets.Item{}
	}
	for _, it := range plan.Items {
		rep.Summary[string(it.Action)]++
	}
	if !apply || plan.Deletes()+len(expired.plans) == 0 {
		rep.Unplanned = plan.Deletes()
		if g.format == output.JSON {
			if err := output.WriteJSON(g.streams.out, rep); err != nil {
				return err
			}
		} else {
			printPlan(g, plan)
			expired.print(g.streams.out)
		}
		if n := len(expired.plans); n > 0 {
			return findings("plan only: %d resource(s) and %d expired deployment(s) (%d resources) would be deleted; rerun with --apply to delete them",
				plan.Deletes(), n, expired.deletes())
		}
		if plan.Deletes() > 0 {
			return findings("plan only: %d resource(s) would be deleted; rerun with --apply to delete them", plan.Deletes())
		}
		return nil
	}

	if err := confirm(g, plan.Deletes()+expired.deletes(), p.cfg.Cleanup.ConfirmAbove, yes); err != nil {
		return err
	}
	res, err := assets.Apply(ctx, p.backend, plan, assets.Options{
		Regions: p.cfg.Regions, Filter: f, Concurrency: len(p.cfg.Regions), Progress: p.progress,
	})
	if err != nil {
		p.progress.Close()
		return err
	}
	bad, err := expired.apply(ctx)
	p.progress.Close()
	if err != nil {
		return err
	}
	res.Unplanned += bad
	rep.Applied, rep.Results, rep.Unplanned = true, res.Results, res.Unplanned
	if g.format == output.JSON {
		if err := output.WriteJSON(g.streams.out, rep); err != nil {
			return err
		}
	} else {
		t := output.NewTable(g.streams.out, "OUTCOME", "KIND", "ID", "REGION", "RUN", "REASON / ERROR")
		for _, r := range res.Results {
			why := r.Reason
			if r.Error != "" {
				why = r.Error
			}
			t.Row(string(r.Outcome), string(r.Asset.Kind), r.Asset.ID, r.Asset.Region, r.RunID, why)
		}
		t.Flush()
		expired.print(g.streams.out)
	}
	if res.Unplanned > 0 {
		return findings("%d resource(s) that should be gone remain", res.Unplanned)
	}
	return nil
}

func printPlan(g *globalOptions, plan assets.Plan) {
	if len(plan.Items) == 0 {
		fmt.Fprintln(g.streams.out, "nothing found")
		return
	}
	t := output.NewTable(g.streams.out, "ACTION", "KIND", "ID", "REGION", "RUN", "REASON")
	for _, it := range plan.Items {
		t.Row(string(it.Action), string(it.Asset.Kind), it.Asset.ID, it.Asset.Region, it.RunID, it.Reason)
	}
	t.Flush()
}

// inProgress decides whether a run may still be worked on: a live kiln
// process here holds its lock; or no journal here knows it and its newest
// resource is recent (it may be running elsewhere) unless force is set.
//
// The lock and the journal are asked once per run and the answer kept for
// the rest of the command: drift and cleanup ask for every image, and a
// run has one image per region (thousands of orphans of a few hundred
// runs cost seconds of journal queries otherwise).
func inProgress(ctx context.Context, p *project, pl *pipeline.Pipeline, force bool) func(string, time.Time) (bool, string) {
	type known struct {
		busy    bool
		why     string
		journal bool // this machine's journal knows the run
	}
	var mu sync.Mutex
	runs := map[string]known{}
	lookup := func(runID string) known {
		mu.Lock()
		defer mu.Unlock()
		if k, ok := runs[runID]; ok {
			return k
		}
		var k known
		if held, err := lockfile.Held(p.pl.RunLockPath(runID)); err != nil || held {
			k = known{busy: true, why: "a kiln process on this machine is working on it"}
		} else if _, _, err := p.journal.Run(ctx, runID); err == nil {
			k.journal = true // this machine ran it and no process holds it: finished or crashed
		} else if !errors.Is(err, journal.ErrUnknownRun) {
			// Unable to tell: keep it, as for a run in progress.
			k = known{busy: true, why: "this machine's journal cannot be read: " + err.Error()}
		}
		runs[runID] = k
		return k
	}
	return func(runID string, newest time.Time) (bool, string) {
		if runID == "" {
			return false, ""
		}
		switch k := lookup(runID); {
		case k.busy:
			return true, k.why
		case k.journal:
			return false, ""
		}
		if !force && !newest.IsZero() && time.Since(newest) < abandonAfter {
			return true, fmt.Sprintf("unknown to this machine's journal and active %s ago: may be in progress elsewhere (--force)",
				output.Age(time.Since(newest)))
		}
		return false, ""
	}
}

// confirm asks before a big deletion: on a terminal it prompts, elsewhere it
// needs --yes.
func confirm(g *globalOptions, n, limit int, yes bool) error {
	if n <= limit || yes {
		return nil
	}
	in, ok := g.streams.in.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return fmt.Errorf("refusing to delete %d resources (more than cleanup.confirm_above = %d) without confirmation: rerun with --yes", n, limit)
	}
	fmt.Fprintf(g.streams.err, "delete %d resources? type yes to continue: ", n)
	line, _ := bufio.NewReader(in).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return errors.New("cleanup cancelled: nothing was deleted")
	}
	return nil
}

// durationFlag lets a config.Duration ("7d", "24h") be a flag.
type durationFlag struct{ d *config.Duration }

func (f durationFlag) String() string {
	if f.d == nil || *f.d == 0 {
		return ""
	}
	return f.d.Std().String()
}
func (f durationFlag) Type() string { return "duration" }
func (f durationFlag) Set(s string) error {
	d, err := config.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}
