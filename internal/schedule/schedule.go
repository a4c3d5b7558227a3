// Package schedule runs releases at the times the use cases' `schedule`
// cron expressions name. It behaves like cron: times are UTC, minutes are
// the finest unit, one release runs at a time, and a time that passes
// while kiln is not running, or is still busy with an earlier release, is
// not made up later.
package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/adhocore/gronx"

	"github.com/kiln-images/kiln/internal/config"
)

// A Job is one scheduled release: a use case and one of its architectures.
type Job struct {
	UseCase string `json:"use_case"`
	Arch    string `json:"arch"`
	Cron    string `json:"schedule"`
}

func (j Job) String() string { return j.UseCase + " " + j.Arch }

// Jobs returns a job for each architecture of each use case with a
// schedule, in use case order.
func Jobs(cfg *config.Config) []Job {
	var jobs []Job
	for _, name := range cfg.UseCaseNames() {
		u := cfg.UseCases[name]
		if u.Schedule == "" {
			continue
		}
		for _, arch := range u.Architectures {
			jobs = append(jobs, Job{UseCase: name, Arch: arch, Cron: u.Schedule})
		}
	}
	return jobs
}

// Next returns the first time after t, in UTC, that j's schedule names.
func (j Job) Next(t time.Time) (time.Time, error) {
	next, err := gronx.NextTickAfter(j.Cron, t.UTC(), false)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule of %s %q: %w", j, j.Cron, err)
	}
	return next.UTC(), nil
}

// Times returns the next n times after t that j's schedule names.
func (j Job) Times(t time.Time, n int) ([]time.Time, error) {
	out := make([]time.Time, 0, n)
	for range n {
		next, err := j.Next(t)
		if err != nil {
			return nil, err
		}
		out = append(out, next)
		t = next
	}
	return out, nil
}

// due returns the earliest time after t that any job's schedule names, and
// the jobs due then, in the order of jobs.
func due(jobs []Job, t time.Time) (time.Time, []Job, error) {
	var (
		at  time.Time
		now []Job
	)
	for _, j := range jobs {
		next, err := j.Next(t)
		if err != nil {
			return time.Time{}, nil, err
		}
		switch {
		case at.IsZero() || next.Before(at):
			at, now = next, []Job{j}
		case next.Equal(at):
			now = append(now, j)
		}
	}
	return at, now, nil
}

// A Scheduler runs each job's release when its schedule says.
type Scheduler struct {
	Jobs []Job
	// Release runs a release of j and returns the run's asset id ("" if
	// none was started) and its error.
	Release func(ctx context.Context, j Job) (string, error)
	Log     *slog.Logger
	// Now and Sleep are the clock; nil means the real one. Sleep returns
	// ctx's error if ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Observe, when set, is told of each release once it ends (kiln
	// serve's pages and metrics show them).
	Observe func(Outcome)
}

// Outcome is one release the scheduler ran.
type Outcome struct {
	Job     Job
	Due     time.Time // the time the schedule named
	Started time.Time
	Ended   time.Time
	RunID   string // "" when no run was started
	Err     error
}

// Lag is how late the release started after its due time.
func (o Outcome) Lag() time.Duration { return o.Started.Sub(o.Due) }

// StoppedError says the scheduler was stopped while a release was under
// way; the run can be resumed.
type StoppedError struct {
	RunID string
	Err   error
}

func (e *StoppedError) Error() string {
	if e.RunID == "" {
		return fmt.Sprintf("stopped while a release was starting: %v", e.Err)
	}
	return fmt.Sprintf("stopped during run %s: %v; resume with: kiln release --resume %s", e.RunID, e.Err, e.RunID)
}

func (e *StoppedError) Unwrap() error { return e.Err }

// Run waits for each due time and runs the jobs due then, one after
// another, until ctx ends. A failed release is logged and the scheduler
// goes on. Run returns nil when ctx ends while it waits, and a
// *StoppedError when ctx ends during a release.
func (s *Scheduler) Run(ctx context.Context) error {
	if len(s.Jobs) == 0 {
		return fmt.Errorf("no use case has a schedule")
	}
	now, sleep := s.Now, s.Sleep
	if now == nil {
		now = time.Now
	}
	if sleep == nil {
		sleep = sleepCtx
	}
	from := now()
	for {
		at, jobs, err := due(s.Jobs, from)
		if err != nil {
			return err
		}
		s.Log.Info("next release", "at", at.Format(time.RFC3339), "jobs", fmt.Sprint(jobs))
		if err := sleep(ctx, at.Sub(now())); err != nil {
			s.Log.Info("scheduler stopped")
			return nil
		}
		for _, j := range jobs {
			start := now()
			s.Log.Info("release starts", "use_case", j.UseCase, "arch", j.Arch, "scheduled", at.Format(time.RFC3339))
			id, err := s.Release(ctx, j)
			end := now()
			if s.Observe != nil {
				s.Observe(Outcome{Job: j, Due: at, Started: start, Ended: end, RunID: id, Err: err})
			}
			if ctx.Err() != nil {
				return &StoppedError{RunID: id, Err: ctx.Err()}
			}
			took := end.Sub(start).Round(time.Second)
			if err != nil {
				s.Log.Error("release failed", "use_case", j.UseCase, "arch", j.Arch, "run", id, "took", took, "err", err)
			} else {
				s.Log.Info("release done", "use_case", j.UseCase, "arch", j.Arch, "run", id, "took", took)
			}
		}
		// Times that passed during the releases are skipped, as cron
		// skips a job whose earlier run still holds its lock.
		from = at
		if t := now(); t.After(from) {
			from = t
		}
		if skipped := missed(s.Jobs, at, from); skipped > 0 {
			s.Log.Warn("scheduled times passed while releasing; skipped", "count", skipped)
		}
	}
}

// missed counts the times in (from, to] that the jobs' schedules name.
func missed(jobs []Job, from, to time.Time) int {
	n := 0
	for _, j := range jobs {
		for t := from; ; {
			next, err := j.Next(t)
			if err != nil || next.After(to) {
				break
			}
			n, t = n+1, next
		}
	}
	return n
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
