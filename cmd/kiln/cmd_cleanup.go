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
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/lockfile"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/report"
)

type cleanupOptions struct {
	run       string
	orphans   bool
	olderThan config.Duration
	gitRefs   string
	noTags    bool
	apply     bool
	yes       bool
	recent    bool
	// forceUnidentified also deletes this project's kiln-managed
	// resources that name no run (kiln:asset-id missing).
	forceUnidentified bool
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

Only this project's resources are considered for deletion: those tagged
kiln:project with kiln.yaml's project and kiln:use-case with one of its use
cases. Others are listed as foreign and never deleted: another project's,
another checkout's use case, or made before kiln tagged projects (see kiln
adopt).

Never deleted: images any channel manifest references — in the working tree,
and at every git tag of the project's repository (only the tags matching
--git-refs when it is given; none with --ignore-git-tags) — and their
snapshots; resources tagged kiln:retain=true (in any case); snapshots behind
an image kiln did not make; resources with no kiln:asset-id (unless
--force-unidentified); stack resources with a Retain policy; runs a kiln
process on this machine is working on; runs this machine's journal does not
know whose newest resource is younger than 1h (they may be in progress
elsewhere; --force-recent overrides this, never the lock of a live process).
--orphans means the resources of every finished or abandoned run that no
manifest references.

Exit 0 for a plan (nothing is changed without --apply) and when nothing that
should go remains after --apply, 1 when something does (with --run: anything
of the run skipped or not this project's too), 2 on error.`,
		Example: `  kiln cleanup --run kiln-20261121T093012Z-7f3a9c           # the plan
  kiln cleanup --run kiln-20261121T093012Z-7f3a9c --apply
  kiln cleanup --orphans --older-than 2d --git-refs 'v*' --apply --yes`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := exactlyOne(cmd, "run", "orphans"); err != nil {
				return err
			}
			if err := atMostOne(cmd, "git-refs", "ignore-git-tags"); err != nil {
				return err
			}
			if cmd.Flags().Changed("force") {
				return argError(cmd, "--force is now --force-recent (clean runs this machine does not know that were active within the last hour)")
			}
			return g.withProject(cmd, func(ctx context.Context, p *project) error { return runCleanup(ctx, g, p, o) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.run, "run", "", "the run whose resources to delete")
	f.BoolVar(&o.orphans, "orphans", false, "every kiln-managed resource of finished or abandoned runs no manifest references")
	f.Var(durationFlag{&o.olderThan}, "older-than", "only resources older than this (e.g. 24h, 7d)")
	f.StringVar(&o.gitRefs, "git-refs", "", "protect the images of manifests at the git tags matching this pattern (e.g. 'v*'; default: every tag)")
	f.BoolVar(&o.noTags, "ignore-git-tags", false, "do not protect the images of manifests at git tags (only the working tree's)")
	f.BoolVar(&o.apply, "apply", false, "delete (without it, only print the plan)")
	f.BoolVar(&o.yes, "yes", false, "confirm a plan bigger than cleanup.confirm_above without asking")
	f.BoolVar(&o.recent, "force-recent", false, "also clean runs unknown to this machine that were active within the last hour (they may be in progress elsewhere)")
	f.BoolVar(&o.forceUnidentified, "force-unidentified", false, "also delete this project's kiln-managed resources that carry no kiln:asset-id")
	f.Bool("force", false, "renamed --force-recent")
	f.MarkHidden("force")
	completeRuns(g, cmd)
	return cmd
}

func runCleanup(ctx context.Context, g *globalOptions, p *project, o cleanupOptions) error {
	f := cloud.Filter{}
	if o.run != "" {
		if _, err := journal.ParseAssetID(o.run); err != nil {
			return usageError(fmt.Errorf("--run: %w", err))
		}
		f.Tags = map[string]string{cloud.TagAssetID: o.run}
	}
	refs, err := references(ctx, p.cfg, o.gitRefs, !o.noTags)
	if err != nil {
		return err
	}
	inv := assets.Scan(ctx, p.backend, p.cfg.Locations(), f, len(p.cfg.Locations()))
	if err := inv.Err(); err != nil {
		return err
	}
	inUse, err := snapshotsInUse(ctx, p, inv.Assets)
	if err != nil {
		return err
	}
	plan := assets.MakePlan(inv.Assets, assets.Policy{
		Referenced: func(region, id string) string {
			if w := refs.Where(region, id); w != "" {
				return "referenced by " + w
			}
			return ""
		},
		InProgress:        inProgress(ctx, p, p.pl, o.recent),
		OlderThan:         o.olderThan.Std(),
		Now:               time.Now(),
		Project:           p.owner(),
		InUse:             inUse,
		ForceUnidentified: o.forceUnidentified,
	})
	// A run named with --run is to be gone, unless --older-than asked to
	// leave its young parts.
	strict := o.run != "" && o.olderThan == 0
	return carryOut(ctx, g, p, report.SchemaCleanup, plan, f, o.apply, o.yes, strict)
}

// snapshotsInUse asks the backend, where it can tell, which of the
// snapshots among as back an image other than their own parent (an image
// someone registered from a kiln snapshot), and returns the question
// MakePlan asks. Only regions holding snapshots are asked.
func snapshotsInUse(ctx context.Context, p *project, as []cloud.Asset) (func(cloud.Asset) string, error) {
	none := func(cloud.Asset) string { return "" }
	c, ok := p.backend.(cloud.SnapshotUsageChecker)
	if !ok {
		return none, nil
	}
	users := map[string]map[string][]string{} // region -> snapshot -> images
	for _, a := range as {
		if a.Kind != cloud.KindSnapshot || users[a.Region] != nil {
			continue
		}
		m, err := c.SnapshotUsers(ctx, a.Region)
		if err != nil {
			return nil, err
		}
		users[a.Region] = m
	}
	return func(a cloud.Asset) string {
		if a.Kind != cloud.KindSnapshot {
			return ""
		}
		var others []string
		for _, img := range users[a.Region][a.ID] {
			if img != a.Parent {
				others = append(others, img)
			}
		}
		if len(others) == 0 {
			return ""
		}
		return "image " + strings.Join(others, ", ") + " (the snapshot backs it)"
	}, nil
}

// carryOut prints a deletion plan, or with apply confirms it if it is big,
// applies it, verifies and prints what became of each resource. cleanup
// and prune share it. A plan exits 0; an apply that leaves something that
// should be gone exits 1.
//
// With strict (cleanup --run: the user named what must go), whatever of
// it an apply leaves — skipped, or not this project's — is a leftover
// (exit 1), as much as what failed; what is protected or retained on
// purpose is not.
func carryOut(ctx context.Context, g *globalOptions, p *project, schema string, plan assets.Plan, f cloud.Filter, apply, yes, strict bool) error {
	rep := report.Cleanup{Schema: schema, Plan: plan.Items, Summary: map[assets.Action]int{}}
	left := 0 // with strict: what an apply leaves that should be gone
	for _, it := range plan.Items {
		rep.Summary[it.Action]++
		if strict && (it.Action == assets.Skip || it.Action == assets.Foreign) {
			left++
		}
	}
	if !apply || plan.Deletes() == 0 {
		rep.Unplanned = plan.Deletes()
		if apply {
			rep.Applied, rep.Unplanned = true, left
		}
		if g.json() {
			if err := g.write(rep); err != nil {
				return err
			}
		} else {
			printPlan(g, plan)
		}
		if plan.Deletes() > 0 && !apply {
			g.planOnly(fmt.Sprintf("delete the %d resource(s) planned for deletion", plan.Deletes()))
		}
		if apply && left > 0 {
			return findings("%d resource(s) of the run were skipped or are not this project's and remain (see the reasons above)", left)
		}
		return nil
	}

	if err := confirm(g, plan.Deletes(), p.cfg.Cleanup.ConfirmAbove, yes); err != nil {
		return err
	}
	res, err := assets.Apply(ctx, p.backend, plan, assets.Options{
		Regions: p.cfg.Locations(), Filter: f, Concurrency: len(p.cfg.Locations()), Progress: p.progress,
	})
	p.progress.Close()
	if err != nil {
		return err
	}
	rep.Applied, rep.Results, rep.Unplanned = true, res.Results, res.Unplanned+left
	if g.json() {
		if err := g.write(rep); err != nil {
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
	}
	if res.Unplanned+left > 0 {
		return findings("%d resource(s) that should be gone remain", res.Unplanned+left)
	}
	return nil
}

func printPlan(g *globalOptions, plan assets.Plan) {
	if len(plan.Items) == 0 {
		fmt.Fprintln(g.streams.out, "nothing to clean up: no kiln-managed resource matches")
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
			return true, fmt.Sprintf("unknown to this machine's journal and active %s ago: may be in progress elsewhere (--force-recent)",
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
	return f.d.String()
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
