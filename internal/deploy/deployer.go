package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/deploy/verify"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/lockfile"
)

// Deployer deploys, verifies, promotes and rolls back the deployments of
// one project.
type Deployer struct {
	Config *config.Config
	// Images reads images (the backend).
	Images ImageReader
	// Kinds are the unit kinds of the backend, by config.Unit.Kind().
	Kinds   map[string]UnitKind
	Journal Journal
	// Secrets reads SSM and Secrets Manager secrets; nil: such inputs
	// fail with a clear error.
	Secrets SecretSource
	// Clock is the time; tests give a fake one (soak, windows,
	// verification intervals). Default verify.RealClock.
	Clock verify.Clock
	// HTTP is the client of HTTP checks; default one without a timeout
	// of its own (each check has one).
	HTTP *http.Client
	// Who is the person or identity recorded as deploying, approving,
	// locking; default $USER.
	Who string
	// Getenv reads env secrets; default os.LookupEnv.
	Getenv func(string) (string, bool)
	// Hook, when set, is called at every step boundary (the crash
	// harness's failpoints).
	Hook     func(event string)
	Progress cloud.Progress // may be nil
	Log      *slog.Logger   // may be nil
}

// ImageReader reads images.
type ImageReader interface {
	// Image returns one image; an absent one is an error matching
	// cloud.ErrNotFound.
	Image(ctx context.Context, region, id string) (cloud.Image, error)
}

// Journal is the part of the run journal deployments use: a deploy,
// promotion or rollback is a run, its unit applies and hooks its steps.
type Journal interface {
	StartRun(ctx context.Context, r journal.Run) error
	SetRun(ctx context.Context, id, phase string, state journal.RunState) error
	Begin(ctx context.Context, runID, phase, name, region, detail string) (int64, error)
	End(ctx context.Context, stepID int64, resource string, err error) error
	Run(ctx context.Context, id string) (journal.Run, []journal.Step, error)
}

func (d *Deployer) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (d *Deployer) clock() verify.Clock {
	if d.Clock != nil {
		return d.Clock
	}
	return verify.RealClock{}
}

func (d *Deployer) now() time.Time { return d.clock().Now().UTC().Truncate(time.Second) }

func (d *Deployer) who() string {
	if d.Who != "" {
		return d.Who
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

func (d *Deployer) hook(event string) {
	if d.Hook != nil {
		d.Hook(event)
	}
}

func (d *Deployer) step(name string) func(error) {
	if d.Progress == nil {
		return func(error) {}
	}
	return d.Progress.Step(name)
}

// ErrRefused is matched by errors of operations a deployment's state
// refuses (locked, disabled, expired, gates failed): findings, not
// errors, for the command's exit code.
var ErrRefused = errors.New("refused")

// lock takes this machine's lock on a deployment: one deploy, promotion,
// verification or change of its record at a time.
func (d *Deployer) lock(ctx context.Context, name string) (func(), error) {
	return lockfile.Lock(ctx, filepath.Join(d.Config.StateDir(), "locks", "deployment-"+name+".lock"))
}

// journalStep runs fn as one journaled step of run: intent before,
// outcome after, each a failpoint boundary.
func (d *Deployer) journalStep(ctx context.Context, run, phase, name, region, detail string, fn func() (string, error)) error {
	id, err := d.Journal.Begin(ctx, run, phase, name, region, detail)
	if err != nil {
		return err
	}
	d.hook(fmt.Sprintf("begin %s %s %s", phase, name, region))
	resource, err := fn()
	if jerr := d.Journal.End(context.WithoutCancel(ctx), id, resource, err); jerr != nil && err == nil {
		err = jerr
	}
	d.hook(fmt.Sprintf("end %s %s %s", phase, name, region))
	return err
}

// stepDone reports whether run has a succeeded step name in phase.
func (d *Deployer) stepDone(ctx context.Context, run, phase, name string) bool {
	if run == "" {
		return false
	}
	_, steps, err := d.Journal.Run(ctx, run)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(steps, func(s journal.Step) bool {
		return s.Phase == phase && s.Name == name && s.State == journal.StepSucceeded
	})
}

// retry calls f until it succeeds, fails for good, or has failed with a
// retryable error (cloud.Retryable) six times, pausing 1s, 2s, 4s, ...
func (d *Deployer) retry(ctx context.Context, what string, f func() error) error {
	pause := time.Second
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !cloud.Retryable(err) || attempt == 6 {
			return err
		}
		d.log().Warn("retrying", "what", what, "attempt", attempt, "err", err)
		if err := d.clock().Sleep(ctx, pause); err != nil {
			return err
		}
		pause *= 2
	}
}

// saveRecord writes a record as a step boundary.
func (d *Deployer) saveRecord(r *record.Record, why string) error {
	if err := record.Save(d.Config.Dir, r); err != nil {
		return fmt.Errorf("deployment %s: write its record: %w", r.Name, err)
	}
	d.hook("record " + r.Name + " " + why)
	return nil
}

// digest is a short digest of v's JSON.
func digest(v any) string {
	b, _ := json.Marshal(v) // maps encode with sorted keys
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// unitToken is the token of a unit: a digest of what it should be, secret
// values left out (a secret's digest could be guessed at), so that the
// same release, settings, inputs and outputs give the same token.
func unitToken(u Unit) string {
	public := map[string]string{}
	for n, v := range u.Inputs {
		if v.Secret {
			public[n] = "[secret]"
		} else {
			public[n] = v.Text
		}
	}
	return digest(struct {
		Project, Deployment, Name, Region string
		Config                            *config.Unit
		Image                             Image
		Inputs, Outputs                   map[string]string
	}{u.Project, u.Deployment, u.Name, u.Region, u.Config, u.Image, public, u.Outputs})[:24]
}

// urls returns the outputs that are URLs, sorted.
func urls(outputs map[string]string) []string {
	out := []string{}
	for _, k := range slices.Sorted(maps.Keys(outputs)) {
		if v := outputs[k]; len(v) > 7 && (v[:7] == "http://" || len(v) > 8 && v[:8] == "https://") {
			out = append(out, v)
		}
	}
	return out
}
