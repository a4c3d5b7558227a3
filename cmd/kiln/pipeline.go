package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/output"
	"github.com/kiln-images/kiln/internal/ownership"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/redact"
	"github.com/kiln-images/kiln/internal/vars"
)

// project is a loaded kiln project: its config, backend and journal.
type project struct {
	cfg      *config.Config
	vars     *vars.Set
	backend  cloud.Backend
	journal  *journal.Journal
	progress *output.Progress
	pl       *pipeline.Pipeline
	// downloads is nil when the project publishes no downloads.
	downloads *downloads
}

func (p *project) Close() {
	if p.progress != nil {
		p.progress.Close()
	}
	if p.journal != nil {
		p.journal.Close()
	}
}

// openProject loads kiln.yaml, opens the journal and the backend, and checks
// the backend's account against the allowed ones before anything is done.
func (g *globalOptions) openProject(ctx context.Context) (*project, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, err
	}
	p := &project{cfg: cfg}
	if p.vars, err = g.resolveVars(cfg); err != nil {
		return nil, err
	}
	if p.journal, err = journal.Open(journalPath(cfg)); err != nil {
		return nil, err
	}
	if p.backend, err = openBackend(ctx, g, cfg); err != nil {
		p.Close()
		return nil, err
	}
	if err := checkAccount(ctx, cfg, p.backend); err != nil {
		p.Close()
		return nil, err
	}
	p.progress = output.NewProgress(g.streams.err, g.tty(), g.logger())
	if p.pl, err = p.pipeline(g); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// openBackend constructs the project's backend.
func openBackend(ctx context.Context, g *globalOptions, cfg *config.Config) (cloud.Backend, error) {
	switch cfg.Backend.Type {
	case "aws":
		return aws.New(ctx, cfg.Backend.AWS, cfg.Regions, aws.WithLogger(g.logger()),
			aws.WithDiskBuilder(newLocalDisks(cfg, g.logger())), aws.WithStateDir(cfg.StateDir()))
	default:
		b, err := local.New(cfg.Backend.Local, cfg.Resolve(cfg.Backend.Local.Root), cfg.Regions, local.WithLogger(g.logger()))
		if err != nil {
			return nil, err
		}
		return fixtureBackend(g, b), nil
	}
}

// checkAccount refuses to act for an account the project does not allow.
func checkAccount(ctx context.Context, cfg *config.Config, b cloud.Backend) error {
	account, err := b.Account(ctx)
	if err != nil {
		return fmt.Errorf("%s: who am I: %w", b.Name(), err)
	}
	allowed := []string{cfg.Backend.Local.AccountID}
	key := "backend.local.account_id"
	if cfg.Backend.Type == "aws" {
		allowed, key = cfg.Backend.AWS.AllowedAccounts, "backend.aws.allowed_accounts"
	}
	if !slices.Contains(allowed, account) {
		return fmt.Errorf("%s: the credentials are for account %s, which is not in %s %v of %s; refusing to act",
			b.Name(), account, key, allowed, cfg.Path)
	}
	return nil
}

// pipeline returns the release pipeline of the project, with the crash
// harness's failpoint wired in.
func (p *project) pipeline(g *globalOptions) (*pipeline.Pipeline, error) {
	fp, err := newFailpoint()
	if err != nil {
		return nil, usageError(err)
	}
	concurrency := 4
	if p.cfg.Backend.Type == "aws" {
		concurrency = p.cfg.Backend.AWS.CopyConcurrency
	}
	pl := &pipeline.Pipeline{
		Config:      p.cfg,
		Backend:     p.backend,
		Journal:     maskedJournal{Journal: p.journal, s: g.streams.secrets},
		Variables:   p.vars,
		Progress:    failpointProgress{fp: fp, next: p.progress},
		Log:         g.logger(),
		Concurrency: concurrency,
		Hook:        fp.hit,
	}
	if p.downloads = newDownloads(p.cfg, p.backend, g.logger(), fp.hit); p.downloads != nil {
		pl.Indexer = p.downloads
	}
	return pl, nil
}

// findRun parses a --run value, takes the run's lock and recovers the run
// from the cloud. The caller releases the lock with the returned function.
func (p *project) findRun(ctx context.Context, id string) (pipeline.Run, func(), error) {
	return p.findRunFlag(ctx, "--run", id)
}

// findRunFlag is findRun for a run named by another flag (--resume).
func (p *project) findRunFlag(ctx context.Context, flag, id string) (pipeline.Run, func(), error) {
	pl := p.pl
	if id == "" {
		return pipeline.Run{}, nil, usageError(fmt.Errorf("%s is required: give the run's asset id (kiln runs lists them)", flag))
	}
	if _, err := journal.ParseAssetID(id); err != nil {
		return pipeline.Run{}, nil, usageError(fmt.Errorf("%s: %w", flag, err))
	}
	unlock, err := pl.LockRun(id)
	if err != nil {
		return pipeline.Run{}, nil, err
	}
	r, err := pl.FindRun(ctx, id)
	if err != nil {
		unlock()
		return pipeline.Run{}, nil, err
	}
	return r, unlock, nil
}

// owner is who the project's destructive commands act for: its name and
// use cases (see package ownership).
func (p *project) owner() ownership.Project {
	return ownership.Project{
		Name: p.cfg.Project, UseCases: p.cfg.UseCaseNames(),
		CostKey: p.cfg.CostTag.Key, CostValue: p.cfg.CostTag.Value,
	}
}

// withProject opens the project for a command, runs fn and closes it.
func (g *globalOptions) withProject(cmd *cobra.Command, fn func(context.Context, *project) error) error {
	ctx := cmd.Context()
	p, err := g.openProject(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	return fn(ctx, p)
}

// maskedJournal masks secret values in what the pipeline records: a step's
// detail and its error.
type maskedJournal struct {
	*journal.Journal
	s *redact.Secrets
}

func (j maskedJournal) Begin(ctx context.Context, runID, phase, name, region, detail string) (int64, error) {
	return j.Journal.Begin(ctx, runID, phase, name, region, j.s.String(detail))
}

func (j maskedJournal) End(ctx context.Context, stepID int64, resource string, err error) error {
	return j.Journal.End(ctx, stepID, j.s.String(resource), j.s.Error(err))
}
