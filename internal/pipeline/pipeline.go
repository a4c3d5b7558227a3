package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
)

// Journal records runs and the intent and outcome of their steps.
type Journal interface {
	StartRun(ctx context.Context, r journal.Run) error
	StartRunUnique(ctx context.Context, r journal.Run) (string, error)
	SetRun(ctx context.Context, id, phase string, state journal.RunState) error
	Begin(ctx context.Context, runID, phase, name, region, detail string) (int64, error)
	End(ctx context.Context, stepID int64, resource string, err error) error
}

// Pipeline runs release phases for one project.
type Pipeline struct {
	Config   *config.Config
	Backend  cloud.Backend
	Journal  Journal
	Progress cloud.Progress // nil: no progress display
	Log      *slog.Logger   // nil: discard
	// Concurrency bounds how many regions are worked on at once.
	Concurrency int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Hook, when set, is called at every step boundary with a description
	// of the boundary. The crash-safety harness kills kiln from here.
	Hook func(event string)
	// Indexer, when set, makes published releases downloadable.
	Indexer Indexer
	// Variables are the recipe's variables; nil: none.
	Variables Variables
}

// Variables gives a run's recipe variables to the phases that use them.
type Variables interface {
	// Provision returns every variable with its value; the error names
	// those without one.
	Provision() ([]cloud.Var, error)
	// Naming returns the values of the variables naming rules use.
	Naming() (map[string]string, error)
	// Secrets returns the secret values, which kept logs must not hold.
	Secrets() []string
}

// Run identifies a run and what it releases.
type Run struct {
	ID      string    `json:"id"`
	UseCase string    `json:"use_case"`
	Arch    string    `json:"arch"`
	Version string    `json:"version"`
	Created time.Time `json:"created"`

	// fresh holds true for a run NewRun has just made in this process,
	// until anything is done for it: nothing in the cloud carries its id
	// yet, so there is nothing to look for. Copies of the Run share it;
	// the first step or look for the run clears it.
	fresh *atomic.Bool
	// begun holds the steps (phase, name, region) this process has begun
	// for a run NewRun made in it; nil for any other run. A step not in
	// it has never been tried: nothing an earlier attempt left can exist.
	begun *sync.Map
}

func (p *Pipeline) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pipeline) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (p *Pipeline) hook(event string) {
	if p.Hook != nil {
		p.Hook(event)
	}
}

// useCase returns the run's use case from the config.
func (p *Pipeline) useCase(r Run) (*config.UseCase, error) {
	u, err := p.Config.UseCase(r.UseCase)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", r.ID, err)
	}
	return u, nil
}

// tags are the creation tags of every asset of run r made in phase.
func (p *Pipeline) tags(r Run, phase string) map[string]string {
	t := p.Config.Tags()
	maps.Copy(t, map[string]string{
		cloud.TagManaged: "true",
		cloud.TagProject: p.Config.Project,
		cloud.TagAssetID: r.ID,
		cloud.TagUseCase: r.UseCase,
		cloud.TagArch:    r.Arch,
		cloud.TagVersion: r.Version,
		cloud.TagPhase:   phase,
	})
	maps.DeleteFunc(t, func(_, v string) bool { return v == "" })
	return t
}

// Tags are the creation tags of what is made for run r in phase, for
// resources made outside the pipeline's phases (a run's claim).
func (p *Pipeline) Tags(r Run, phase string) map[string]string { return p.tags(r, phase) }

// runDir is where kiln keeps a run's local files (console logs).
func (p *Pipeline) runDir(id string) string {
	return filepath.Join(p.Config.StateDir(), "runs", id)
}

// step runs fn as one journaled step: intent before, outcome after.
func (p *Pipeline) step(ctx context.Context, r Run, phase, name, region, detail string, fn func(context.Context) (string, error)) error {
	if r.fresh != nil {
		r.fresh.Store(false)
	}
	if r.begun != nil {
		r.begun.Store(stepKey{phase, name, region}, true)
	}
	event := fmt.Sprintf("%s %s %s", phase, name, region)
	p.hook("begin " + event)
	id, err := p.Journal.Begin(ctx, r.ID, phase, name, region, detail)
	if err != nil {
		return fmt.Errorf("journal %s: %w", event, err)
	}
	label := phase + " " + name
	if region != "" {
		label += " [" + region + "]"
	}
	done := func(error) {}
	if p.Progress != nil {
		done = p.Progress.Step(label)
	}
	resource, err := fn(ctx)
	done(err)
	// Record the outcome even when ctx was cancelled mid-step.
	if jerr := p.Journal.End(context.WithoutCancel(ctx), id, resource, err); jerr != nil && err == nil {
		err = fmt.Errorf("journal %s: %w", event, jerr)
	}
	p.hook("end " + event)
	return err
}

// FindRun recovers a run's identity from the tags of its resources, so a
// phase works on a machine that has never seen the run; the journal is the
// fallback for a run that made nothing yet.
func (p *Pipeline) FindRun(ctx context.Context, id string) (Run, error) {
	created, err := journal.ParseAssetID(id)
	if err != nil {
		return Run{}, err
	}
	fromTags := func(tags map[string]string) Run {
		return Run{ID: id, UseCase: tags[cloud.TagUseCase], Arch: tags[cloud.TagArch], Version: tags[cloud.TagVersion], Created: created}
	}
	want := cloud.Filter{Tags: map[string]string{cloud.TagAssetID: id}}
	regions := append([]string{p.Config.BuildRegion}, p.Config.Locations()...)
	for _, region := range regions {
		imgs, err := p.Backend.ListImages(ctx, region, want)
		if err != nil {
			return Run{}, fmt.Errorf("find run %s in %s: %w", id, region, err)
		}
		if len(imgs) > 0 {
			return p.adopt(ctx, fromTags(imgs[0].Tags))
		}
	}
	assets, err := p.Backend.ListAssets(ctx, p.Config.BuildRegion, want)
	if err != nil {
		return Run{}, fmt.Errorf("find run %s in %s: %w", id, p.Config.BuildRegion, err)
	}
	for _, a := range assets {
		if a.Tags[cloud.TagUseCase] != "" {
			return p.adopt(ctx, fromTags(a.Tags))
		}
	}
	if j, ok := p.Journal.(interface {
		Run(context.Context, string) (journal.Run, []journal.Step, error)
	}); ok {
		jr, _, err := j.Run(ctx, id)
		if err == nil {
			return Run{ID: id, UseCase: jr.UseCase, Arch: jr.Arch, Version: jr.Version, Created: created}, nil
		}
		if !errors.Is(err, journal.ErrUnknownRun) {
			return Run{}, err
		}
	}
	return Run{}, &UnknownRunError{ID: id}
}

// adopt records in this machine's journal a run found by its tags, which
// another machine may have started, so its steps here have a run to belong
// to. StartRun leaves a run the journal already knows as it is.
func (p *Pipeline) adopt(ctx context.Context, r Run) (Run, error) {
	host, _ := os.Hostname()
	err := p.Journal.StartRun(ctx, journal.Run{
		ID: r.ID, UseCase: r.UseCase, Arch: r.Arch, Version: r.Version,
		Created: r.Created, Updated: p.now().UTC(), State: journal.RunRunning, Host: host,
	})
	if err != nil {
		return Run{}, fmt.Errorf("journal: %w", err)
	}
	return r, nil
}

// UnknownRunError means no resource and no journal record names the run.
type UnknownRunError struct{ ID string }

func (e *UnknownRunError) Error() string {
	return fmt.Sprintf("run %s: no image or asset tagged %s=%s in any region, and no journal record", e.ID, cloud.TagAssetID, e.ID)
}

type stepKey struct{ phase, name, region string }

// firstTry reports whether the step (phase, name, region) of r has never
// been tried: r was made by NewRun in this process, which has not begun
// the step. Call it before the step begins.
func (p *Pipeline) firstTry(r Run, phase, name, region string) bool {
	if r.begun == nil {
		return false
	}
	_, tried := r.begun.Load(stepKey{phase, name, region})
	return !tried
}
