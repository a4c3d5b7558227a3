package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/console"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/deployweb"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/gates"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/lockfile"
	"github.com/kiln-images/kiln/internal/metrics"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/refresh"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/schedule"
	"github.com/kiln-images/kiln/internal/server"
)

// serveTokenEnv is the environment variable that holds the actions' token when
// no --token-file is given.
const serveTokenEnv = "KILN_SERVE_TOKEN"

// minTokenLen is the shortest token kiln serve accepts: the token is all
// that stands between a network and a release.
const minTokenLen = 16

// consoleServer is the console of a project mounted on its server, with
// the work it runs in the background.
type consoleServer struct {
	console *console.Console
	checks  *refresh.Refresher
	journal *journal.Journal // the console's own handle, for reads
	sched   *schedule.Scheduler
	unlock  func() // the scheduler's lock

	// bg counts releases started from the console; errs collects those
	// that an interruption stopped, to say how to resume them.
	bg   sync.WaitGroup
	mu   sync.Mutex
	errs []error
}

// mountConsole mounts the console, its API and /metrics on srv. ctx is the
// server's: releases started from the console run under it.
func mountConsole(ctx context.Context, g *globalOptions, p *project, srv *server.Server, o serveOptions) (*consoleServer, error) {
	cs := &consoleServer{}
	var err error
	var token []byte
	if o.allowActions {
		if token, err = readToken(o.tokenFile); err != nil {
			return nil, usageError(err)
		}
	}
	// The console reads the journal through a handle of its own, so page
	// views do not queue behind the pipeline's writes.
	if cs.journal, err = journal.Open(journalPath(p.cfg)); err != nil {
		return nil, err
	}
	log := g.logger()
	cs.checks = &refresh.Refresher{
		Every: o.checkEvery.Std(),
		Log:   log,
		Check: func(ctx context.Context) (refresh.Result, error) { return checkProject(ctx, p, o) },
	}
	m := metrics.New(metrics.Options{
		Journal:      cs.journal,
		Snapshot:     cs.checks.Snapshot,
		DocumentStep: pipeline.DocumentStep,
		Channel: func(path string) string {
			for _, ch := range p.cfg.ChannelNames() {
				if mp, _ := p.cfg.ManifestPath(ch); mp == path {
					return ch
				}
			}
			return ""
		},
		Log: log,
	})
	var record *console.ScheduleRecord
	if o.schedule {
		if cs.sched, cs.unlock, err = newScheduler(ctx, g, p, o.channel, o.commitOptions, documentOptions{}); err != nil {
			cs.Close()
			return nil, err
		}
		record = console.NewScheduleRecord(o.channel)
		cs.sched.Observe = func(out schedule.Outcome) {
			record.Observe(out)
			m.ObserveScheduled(out)
		}
	}
	opts := console.Options{
		Config:        p.cfg,
		Backend:       p.backend.Name(),
		Journal:       cs.journal,
		Checks:        cs.checks,
		CheckEvery:    o.checkEvery.Std(),
		Schedule:      record,
		SecureCookies: o.tls,
		Log:           log,
		RunLocked: func(id string) bool {
			held, err := lockfile.Held(p.pl.RunLockPath(id))
			return err != nil || held // unknown counts as held: never offer to resume a live run
		},
	}
	if o.allowActions {
		opts.Actions = &console.Actions{
			Token: token,
			Release: func(rctx context.Context, useCase, arch, ch string) (string, func() error, error) {
				return cs.release(ctx, rctx, g, p, o, useCase, arch, ch)
			},
			Promote: func(rctx context.Context, useCase, from, to string, apply bool) (report.Promote, error) {
				return promote(rctx, g, p, o, useCase, from, to, apply)
			},
		}
	}
	if cs.console, err = console.New(opts); err != nil {
		cs.Close()
		return nil, err
	}
	cs.console.Mount(srv)
	d := p.deployer(g)
	deployments := &deployweb.Section{Console: cs.console, List: d.List, Entry: d.Entry, Log: log}
	if o.allowActions {
		// The console knows the token, not the person: its verifications
		// are recorded as the server's, through the console.
		dv := p.deployer(g)
		dv.Who += " via the console"
		deployments.Verify = func(name string) (*deploy.VerifyReport, error) { return cs.verify(ctx, g, p, o, dv, name) }
	}
	if err := deployments.Mount(srv); err != nil {
		cs.Close()
		return nil, err
	}
	srv.Handle("GET /metrics", m.Handler())
	srv.AddCheck("journal", func(ctx context.Context) error {
		_, err := cs.journal.Stamp(ctx)
		return err
	})
	return cs, nil
}

// Run runs the drift checks and, with --schedule, the scheduler until ctx
// ends, then waits for the releases started from the console to stop. It
// returns what was interrupted, with how to resume it.
func (cs *consoleServer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); cs.checks.Run(ctx) }()
	var schedErr error
	if cs.sched != nil {
		schedErr = cs.sched.Run(ctx)
	}
	<-ctx.Done()
	wg.Wait()
	cs.bg.Wait()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return errors.Join(append([]error{schedErr}, cs.errs...)...)
}

// Close releases the console's journal handle and the scheduler's lock.
func (cs *consoleServer) Close() {
	if cs.unlock != nil {
		cs.unlock()
	}
	if cs.journal != nil {
		cs.journal.Close()
	}
}

// checkProject is one drift check of every channel and one inventory of
// every region: what kiln drift and kiln assets do, with kiln serve's
// --git-refs and --warn-before.
func checkProject(ctx context.Context, p *project, o serveOptions) (refresh.Result, error) {
	in, names, err := driftInput(ctx, p, p.pl, driftOptions{gitRefs: o.gitRefs, warnBefore: o.warnBefore})
	if err != nil {
		return refresh.Result{}, err
	}
	rep, err := drift.Check(ctx, p.backend, in)
	if err != nil {
		return refresh.Result{}, err
	}
	regions := p.cfg.Regions
	inv := assets.Scan(ctx, p.backend, regions, cloud.Filter{}, len(regions))
	if err := inv.Err(); err != nil {
		return refresh.Result{}, err
	}
	return refresh.Result{Drift: report.NewDrift(names, rep), Checked: in.Channels, Assets: report.NewAssets(inv.Assets)}, nil
}

// release starts a release from the console: what kiln release USE_CASE
// --channel CH does, with kiln serve's --commit and --push. It returns once
// the run is in the journal; the release goes on under the server's
// context srvCtx.
func (cs *consoleServer) release(srvCtx, ctx context.Context, g *globalOptions, p *project, o serveOptions, useCase, arch, ch string) (string, func() error, error) {
	if _, err := p.cfg.ManifestPath(ch); err != nil {
		return "", nil, &console.BadInputError{Err: fmt.Errorf("channel: %w", err)}
	}
	if _, err := p.cfg.UseCase(useCase); err != nil {
		return "", nil, &console.BadInputError{Err: err}
	}
	// The checks of kiln release, in its order, before a run exists; the
	// console overrides no gate.
	if err := p.checkRelease(ctx, useCase, ""); err != nil {
		return "", nil, err
	}
	u, a, err := p.pl.ResolveArch(useCase, arch)
	if err != nil {
		return "", nil, &console.BadInputError{Err: err}
	}
	r := pipeline.Run{UseCase: u.Name, Arch: a}
	if err := p.pl.CheckRelease(ctx, r.UseCase, r.Arch, ch); err != nil {
		return "", nil, &console.BadInputError{Err: err}
	}
	keys, err := runKeys(p, r)
	if err != nil {
		return "", nil, err
	}
	if err := o.check(ctx, g, p.cfg, ch, keys, publishSubject(r, ch)); err != nil {
		return "", nil, err
	}
	gs, _, err := p.pl.ChannelGates(ctx, r, ch)
	if err != nil {
		return "", nil, err
	}
	if !gates.Passed(gs) {
		return "", nil, &console.BadInputError{Err: fmt.Errorf("release refused: a gate of channel %s failed; nothing was made\n%s", ch, gates.Failed(gs))}
	}
	if r, err = p.pl.NewRun(ctx, useCase, arch, ""); err != nil {
		return "", nil, &console.BadInputError{Err: err}
	}
	unlock, err := p.pl.LockRun(r.ID)
	if err != nil {
		return "", nil, err
	}
	relCtx, release, err := holdChannel(srvCtx, g, p, r, ch)
	if err != nil {
		abandonRun(ctx, p, r.ID)
		unlock()
		return "", nil, fmt.Errorf("run %s: %w; nothing was made", r.ID, err)
	}
	done := make(chan error, 1)
	cs.bg.Add(1)
	go func() {
		defer cs.bg.Done()
		defer unlock()
		defer release()
		rep, err := p.pl.Release(relCtx, r, ch)
		if err == nil && rep.Publish != nil {
			_, err = o.record(relCtx, g, p.cfg, ch, keys, publishSubject(r, ch), gates.Trailers(gs)...)
		}
		if err != nil && srvCtx.Err() != nil {
			err = fmt.Errorf("run %s stopped: %w; resume with: kiln release --resume %s", r.ID, err, r.ID)
			cs.mu.Lock()
			cs.errs = append(cs.errs, err)
			cs.mu.Unlock()
		}
		done <- err
	}()
	return r.ID, func() error { return <-done }, nil
}

// verify is kiln verify NAME from the console, under the server's ctx,
// with kiln serve's --commit and --push for the record.
func (cs *consoleServer) verify(ctx context.Context, g *globalOptions, p *project, o serveOptions, d *deploy.Deployer, name string) (*deploy.VerifyReport, error) {
	cs.bg.Add(1)
	defer cs.bg.Done()
	rep, err := d.Verify(ctx, name)
	if err != nil {
		return nil, err
	}
	ro := recordOptions{commit: o.commit, push: o.push}
	if _, err := ro.record(ctx, g, p.cfg, name, verifySubject(rep), true); err != nil {
		return nil, fmt.Errorf("deployment %s: the verification is in its record, not in git: %w", name, err)
	}
	return rep, nil
}

// promote is kiln promote USE_CASE --from FROM --to TO [--apply] from the
// console, with kiln serve's --commit and --push.
func promote(ctx context.Context, g *globalOptions, p *project, o serveOptions, useCase, from, to string, apply bool) (report.Promote, error) {
	if _, err := p.cfg.UseCase(useCase); err != nil {
		return report.Promote{}, &console.BadInputError{Err: err}
	}
	for _, ch := range []string{from, to} {
		if _, err := p.cfg.ManifestPath(ch); err != nil {
			return report.Promote{}, &console.BadInputError{Err: err}
		}
	}
	if from == to {
		return report.Promote{}, &console.BadInputError{Err: fmt.Errorf("from and to are both %q", from)}
	}
	// No overrides from the console: a gate that fails refuses.
	return promoteChannel(ctx, g, p, useCase, promoteOptions{from: from, to: to, apply: apply, commitOptions: o.commitOptions}, gates.Overrides{})
}

// readToken reads the actions' token from file, or else from $KILN_SERVE_TOKEN.
func readToken(file string) ([]byte, error) {
	var token []byte
	switch {
	case file != "":
		st, err := os.Stat(file)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("--token-file %s: readable by other users (mode %04o); allowed: a file only its owner reads (chmod 600)", file, st.Mode().Perm())
		}
		if token, err = os.ReadFile(file); err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		token = bytes.TrimSpace(token)
	case os.Getenv(serveTokenEnv) != "":
		token = []byte(strings.TrimSpace(os.Getenv(serveTokenEnv)))
	default:
		return nil, fmt.Errorf("--allow-actions needs a token: --token-file FILE or $%s", serveTokenEnv)
	}
	if len(token) < minTokenLen {
		return nil, fmt.Errorf("the actions' token is %d characters long; allowed: at least %d (e.g. openssl rand -hex 32)", len(token), minTokenLen)
	}
	return token, nil
}

// checkEveryDefault is how often kiln serve checks for drift by default.
const checkEveryDefault = 15 * time.Minute
