// Command drift measures `kiln drift` at scale: a channel manifest of many
// use cases in many regions, among thousands of other images per region,
// on the local backend and on the aws backend through moto, side by side
// with the minimal scan (one paged image listing per region, package
// scale): wall time over several interleaved rounds and the number of API
// (aws) or backend (local) calls.
//
// Run it with scripts/bench-scale.sh; by hand:
//
//	go build -o /tmp/kiln ./cmd/kiln
//	go run ./bench/drift -kiln /tmp/kiln -out /tmp/drift.md
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-images/kiln/bench/inventory/scale"
	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/ownership"
	"github.com/kiln-images/kiln/internal/pipeline"
)

type options struct {
	scale.Options
	useCases, localOther, awsOther int
	orphans                        float64
}

func main() {
	scale.MaybePeer()
	var o options
	o.Register(flag.CommandLine)
	flag.IntVar(&o.useCases, "use-cases", 20, "use cases in the manifest (one entry per region each)")
	flag.IntVar(&o.localOther, "local-other", 5000, "other images per local region")
	flag.IntVar(&o.awsOther, "aws-other", 300, "other images per aws region (moto is slow beyond a few hundred)")
	flag.Float64Var(&o.orphans, "orphans", 0.1, "fraction of the other images that are kiln's: older releases no manifest references")
	flag.Parse()
	scale.Main("drift", o.Options, map[string]scale.Bench{
		"local": func(ctx context.Context, w io.Writer) error { return benchLocal(ctx, o, w) },
		"aws":   func(ctx context.Context, w io.Writer) error { return benchAWS(ctx, o, w) },
	})
}

// world is the layout of one region: the use cases' released images
// first, then the kiln-managed orphans, then images that are not kiln's.
type world struct {
	useCases, orphans, other int
	created                  time.Time
}

func releaseRun(u int) string { return fmt.Sprintf("kiln-20260101T000000Z-%06x", u) }
func orphanRun(j int) string  { return fmt.Sprintf("kiln-20251201T000000Z-%06x", j) }

func (w world) spec(region string, i int) scale.ImageSpec {
	tags := func(run, useCase string) map[string]string {
		return map[string]string{
			cloud.TagManaged: "true", cloud.TagProject: "scale", cloud.TagAssetID: run, cloud.TagUseCase: useCase, cloud.TagArch: "x86_64",
			cloud.TagVersion: "1.0", cloud.TagPhase: cloud.PhaseReplicate, cloud.TagTest: cloud.TestPassed,
			"deployment_name": "scale",
		}
	}
	switch {
	case i < w.useCases:
		u := scale.UseCases(w.useCases)[i]
		return scale.ImageSpec{Name: u + "-x86_64-1.0", Tags: tags(releaseRun(i), u), Created: w.created, Public: true}
	case i < w.useCases+w.orphans:
		j := i - w.useCases
		return scale.ImageSpec{Name: fmt.Sprintf("uc-01-x86_64-0.%d", j), Tags: tags(orphanRun(j), "uc-01"), Created: w.created}
	}
	return scale.ImageSpec{Name: fmt.Sprintf("other-%d", i), Tags: map[string]string{"team": "data"}, Created: w.created}
}

// document writes the manifest of the released images with the project's
// own code, and records every kiln run in the journal as finished, as the
// machine that released them would have.
func (w world) document(ctx context.Context, cfg *config.Config, ids map[string][]string) error {
	names := scale.UseCases(w.useCases)
	_, err := channel.Update(ctx, cfg, "latest", func(m manifest.Manifest) error {
		for region, list := range ids {
			for u, name := range names {
				m.Set(name, region, manifest.Entry{Architecture: "x86_64", ID: list[u], Name: name + "-x86_64-1.0", Public: true})
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	j, err := journal.Open(filepath.Join(cfg.StateDir(), "journal.db"))
	if err != nil {
		return err
	}
	defer j.Close()
	runs := map[string]string{}
	for u, name := range names {
		runs[releaseRun(u)] = name
	}
	for k := range w.orphans {
		runs[orphanRun(k)] = "uc-01"
	}
	for id, u := range runs {
		if err := j.StartRun(ctx, journal.Run{ID: id, UseCase: u, Arch: "x86_64", Version: "1.0",
			Created: w.created, Updated: w.created, State: journal.RunSucceeded, Phase: cloud.PhasePublish}); err != nil {
			return err
		}
	}
	return nil
}

// check is what a correct drift run reports here: every entry in sync and
// every kiln-managed image of an older release an orphan.
func (w world) check(regions int) func(scale.Result) error {
	return func(res scale.Result) error {
		if res.Code != 0 {
			return fmt.Errorf("exit %d", res.Code)
		}
		var rep struct {
			Schema string `json:"schema"`
			drift.Report
		}
		if err := json.Unmarshal(res.Stdout, &rep); err != nil {
			return err
		}
		s := rep.Summary
		if rep.Schema != "kiln.drift/v1" || s.Checked != w.useCases*regions || s.InSync != s.Checked ||
			s.Orphans != w.orphans*regions || s.Regions != regions || rep.Drifted() {
			return fmt.Errorf("unexpected report: %+v", s)
		}
		return nil
	}
}

func benchLocal(ctx context.Context, o options, w io.Writer) error {
	p, err := o.NewProject("kiln-bench-drift-", "local", o.useCases)
	if err != nil {
		return err
	}
	defer p.Close()
	cfg := p.Config
	orphans := int(o.orphans * float64(o.localOther))
	wd := world{useCases: o.useCases, orphans: orphans, other: o.localOther - orphans, created: time.Now().Add(-48 * time.Hour)}
	per := o.useCases + o.localOther
	fmt.Fprintf(os.Stderr, "local: seeding %d regions x %d images...\n", o.LocalRegions, per)
	start := time.Now()
	ids, err := scale.SeedLocal(ctx, cfg, per, wd.spec)
	if err != nil {
		return err
	}
	if err := wd.document(ctx, cfg, ids); err != nil {
		return err
	}
	seeded := time.Since(start)

	calls, err := localCalls(ctx, cfg)
	if err != nil {
		return err
	}
	args := []string{"drift", "-o", "json", "-c", p.Path}
	vs := o.KilnVariants(scale.Env(), args, func() (int, string) { return calls["ListImages"] + calls["LaunchPermissions"], "" }, wd.check(o.LocalRegions))
	peer, err := scale.PeerVariant("local", cfg.Backend.Local.Root, p.Regions, o.LocalRegions*per, func() (int, string) { return o.LocalRegions, "" })
	if err != nil {
		return err
	}
	vs = append(vs, peer)
	if err := scale.Warm(ctx, vs); err != nil {
		return err
	}
	samples, err := scale.Interleave(ctx, o.Reps, vs, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "### Drift, local backend: %d use cases x %d regions among %d other images per region\n\n", o.useCases, o.LocalRegions, o.localOther)
	fmt.Fprintf(w, "%d image records in all (per region: %d released, %d older kiln releases no manifest references, %d not kiln's), "+
		"seeded in %s through the store's API; the manifest written with the project's channel code. "+
		"`kiln drift -o json` as a separate process (every entry in sync, %d orphans reported: checked each run), %d interleaved rounds after a warm-up; "+
		"the peer, `minimal`, a process that reads and decodes every image record, regions in parallel.\n\n",
		o.LocalRegions*per, o.useCases, orphans, o.localOther-orphans, seeded.Round(time.Second), orphans*o.LocalRegions, o.Reps)
	fmt.Fprint(w, scale.Table(vs, samples, "minimal"))
	fmt.Fprintf(w, "\nBackend calls of the check: %v (minimum: one ListImages per region = %d; launch permissions are read only for use cases shared with accounts, none here).\n\n",
		calls, o.LocalRegions)
	return nil
}

// localCalls counts the backend calls of drift.Check on the project, with
// the input kiln drift builds (every channel, the working tree's
// references, the publish policies).
func localCalls(ctx context.Context, cfg *config.Config) (map[string]int, error) {
	b, err := local.New(cfg.Backend.Local, cfg.Backend.Local.Root, cfg.Regions)
	if err != nil {
		return nil, err
	}
	counter := scale.NewCountingBackend(b)
	refs, err := channel.References(ctx, cfg, "")
	if err != nil {
		return nil, err
	}
	in := drift.Input{
		Referenced: refs.All(), Regions: cfg.Regions, Now: time.Now(), WarnBefore: 14 * 24 * time.Hour, Concurrency: len(cfg.Regions),
		Owns: ownership.Project{Name: cfg.Project, UseCases: cfg.UseCaseNames()}.Owns,
		Policy: func(key string) (cloud.LaunchPermissions, bool) {
			u, _, ok := channel.UseCaseOf(cfg, key)
			if !ok {
				return cloud.LaunchPermissions{}, false
			}
			return pipeline.Permissions(u.Publish), true
		},
	}
	for _, n := range cfg.ChannelNames() {
		m, err := channel.Load(cfg, n)
		if err != nil {
			return nil, err
		}
		in.Channels = append(in.Channels, drift.Channel{Name: n, Manifest: m})
	}
	rep, err := drift.Check(ctx, counter, in)
	if err != nil {
		return nil, err
	}
	if rep.Drifted() {
		return nil, fmt.Errorf("in-process check found drift: %+v", rep.Summary)
	}
	return counter.Calls(), nil
}

func benchAWS(ctx context.Context, o options, w io.Writer) error {
	p, err := o.NewProject("kiln-bench-drift-aws-", "aws", o.useCases)
	if err != nil {
		return err
	}
	defer p.Close()
	moto, err := scale.StartMoto(ctx)
	if err != nil {
		return err
	}
	defer moto.Close()
	orphans := int(o.orphans * float64(o.awsOther))
	wd := world{useCases: o.useCases, orphans: orphans, other: o.awsOther - orphans, created: time.Now()}
	per := o.useCases + o.awsOther
	fmt.Fprintf(os.Stderr, "aws: seeding %d regions x %d images...\n", o.AWSRegions, per)
	start := time.Now()
	ids, err := scale.SeedMoto(ctx, moto.URL, p.Regions, per, wd.spec)
	if err != nil {
		return err
	}
	if err := wd.document(ctx, p.Config, ids); err != nil {
		return err
	}
	seeded := time.Since(start)
	env, err := scale.AWSEnv(p.Dir, moto.Counter.URL)
	if err != nil {
		return err
	}
	args := []string{"drift", "-o", "json", "-c", p.Path}
	vs := o.KilnVariants(env, args, moto.Take, wd.check(o.AWSRegions))
	peer, err := scale.PeerVariant("aws-images", moto.Counter.URL, p.Regions, o.AWSRegions*per, moto.Take)
	if err != nil {
		return err
	}
	vs = append(vs, peer)
	samples, err := scale.Interleave(ctx, o.Reps, vs, os.Stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "### Drift, aws backend through moto: %d use cases x %d regions among %d other images per region\n\n", o.useCases, o.AWSRegions, o.awsOther)
	fmt.Fprintf(w, "%d images in all (per region: %d released and public, %d older kiln releases, %d not kiln's), seeded in %s. "+
		"`kiln drift -o json` as a separate process through a counting proxy in front of moto (every entry in sync, %d orphans: checked each run), "+
		"%d interleaved rounds; the peer, `minimal`, a process that makes the account check and one paged DescribeImages per region.\n\n",
		o.AWSRegions*per, o.useCases, orphans, o.awsOther-orphans, seeded.Round(time.Second), orphans*o.AWSRegions, o.Reps)
	fmt.Fprint(w, scale.Table(vs, samples, "minimal"))
	fmt.Fprintf(w, "\nThe floor: 1 GetCallerIdentity + %d DescribeImages (one page each; moto does not page DescribeImages).\n\n", o.AWSRegions)
	scale.LastCalls(w, vs, samples)
	return nil
}
