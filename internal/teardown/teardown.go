package teardown

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// Deployments is what teardown needs of the deployment core
// (*deploy.Deployer).
type Deployments interface {
	// Definition returns a deployment's settings and record (nil when it
	// has none).
	Definition(name string) (*config.Deployment, *record.Record, error)
	// LockDeployment takes the lock deploys of the deployment take.
	LockDeployment(ctx context.Context, name string) (func(), error)
	// HookRunner returns a function running one of the deployment's hooks.
	HookRunner(ctx context.Context, def *config.Deployment, rec *record.Record) (func(context.Context, config.Hook) deploy.HookResult, error)
}

// Leftovers finds, empties and deletes the resources of a deployment that
// no unit kind and not the backend's inventory owns: on aws buckets,
// repositories, log groups, user pools and roles; locally the parts
// earlier teardowns kept.
type Leftovers interface {
	// Find returns the resources in region whose tags match tags, each
	// confirmed to exist, typed with kiln's names (bucket, repository,
	// log-group...), in the order they may be deleted.
	Find(ctx context.Context, region string, tags map[string]string) ([]deploy.Resource, error)
	// Empty removes what a container holds — every object version and
	// delete marker of a bucket, every image of a repository — and
	// checks that it is empty; other types have nothing to empty. An
	// absent resource is empty.
	Empty(ctx context.Context, r deploy.Resource) error
	// Delete deletes one resource; absent succeeds; cloud.ErrNotYet means
	// something still holds it (a bucket with objects).
	Delete(ctx context.Context, r deploy.Resource) error
}

// Index is the account's tag index (aws: the Resource Groups Tagging
// API): resources of any type with the given tags.
type Index interface {
	// Tagged returns what the index lists for tags in region, each
	// confirmed with its own service's describe where kiln knows the
	// type (typed and named as Leftovers and the backend's inventory name
	// them); others keep the index's type and ARN and Confirmed false.
	// stale lists what the index returned that is gone.
	Tagged(ctx context.Context, region string, tags map[string]string) (found []Indexed, stale []string, err error)
}

// Indexed is one resource the tag index lists.
type Indexed struct {
	deploy.Resource
	ARN string `json:"arn"`
	// Confirmed is false for types kiln has no describe for: they count
	// as left until the index drops them.
	Confirmed bool `json:"confirmed"`
}

// Keeper is implemented by unit kinds whose units hold data a teardown
// may keep (localunit: a VM's disk, a process's data directory).
type Keeper interface {
	// Parts lists what of the unit may be kept.
	Parts(ctx context.Context, u deploy.Unit) ([]deploy.Resource, error)
	// Keep moves a part out of the unit, so that Destroy leaves it, and
	// returns it where it is now. Idempotent.
	Keep(ctx context.Context, u deploy.Unit, part deploy.Resource) (deploy.Resource, error)
}

// Destroyer tears down the deployments of one project.
type Destroyer struct {
	Config      *config.Config
	Deployments Deployments
	// Kinds are the backend's unit kinds, by config.Unit.Kind().
	Kinds map[string]deploy.UnitKind
	// Assets is the backend's inventory; nil: none.
	Assets cloud.Inventory
	// Leftovers finds what neither kinds nor Assets do; nil: nothing.
	Leftovers Leftovers
	// Index is the account's tag index, for verification; nil: none.
	Index   Index
	Journal deploy.Journal
	// Who is recorded as the one who destroyed.
	Who string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Hook is called at every step boundary (the crash harness).
	Hook     func(event string)
	Progress cloud.Progress // may be nil
	Log      *slog.Logger   // may be nil
	// PollInterval is the first pause between verification rounds (it
	// doubles up to 30s); default 2s.
	PollInterval time.Duration
	// Concurrency is how many buckets or repositories are emptied, and
	// how many leftovers of one type deleted, at once; below 1: one at a
	// time. Types still go one after another, in dependency order.
	Concurrency int
}

// DefaultConcurrency is the Concurrency kiln destroy uses: a teardown of
// hundreds of snapshots and volumes is bound by round trips, and ten in
// flight stay far below the request rates EC2, S3 and ECR allow.
const DefaultConcurrency = 10

// ErrRefused is matched by the errors of a teardown the deployment's
// state or the rules refuse (protected, locked, depended on, a kept
// resource its stack would delete): findings, exit 1.
var ErrRefused = deploy.ErrRefused

// ErrLeft is matched by the error of a teardown after which resources
// that should be gone remain: findings, exit 1.
var ErrLeft = errors.New("resources left")

func (d *Destroyer) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (d *Destroyer) now() time.Time {
	if d.Now != nil {
		return d.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

func (d *Destroyer) hook(event string) {
	if d.Hook != nil {
		d.Hook(event)
	}
}

func (d *Destroyer) step(name string) func(error) {
	if d.Progress == nil {
		return func(error) {}
	}
	return d.Progress.Step(name)
}

// journalStep runs fn as one journaled step of run: intent before,
// outcome after, each a failpoint boundary.
func (d *Destroyer) journalStep(ctx context.Context, run, name, region, detail string, fn func() (string, error)) error {
	id, err := d.Journal.Begin(ctx, run, "destroy", name, region, detail)
	if err != nil {
		return err
	}
	d.hook(fmt.Sprintf("begin destroy %s %s", name, region))
	done := d.step(name)
	resource, err := fn()
	done(err)
	if jerr := d.Journal.End(context.WithoutCancel(ctx), id, resource, err); jerr != nil && err == nil {
		err = jerr
	}
	d.hook(fmt.Sprintf("end destroy %s %s", name, region))
	return err
}

// retry calls f until it succeeds, fails for good or has failed with a
// retryable error (cloud.Retryable) six times.
func retry(ctx context.Context, f func(context.Context) error) error {
	return cloud.Retry(ctx, 6, time.Second, 20*time.Second, f)
}
