// Package refresh runs kiln serve's drift check and asset scan, at start,
// on a schedule and on demand, and keeps the results of the last one.
// The console's pages, its API and the metrics read those results instead
// of calling the cloud, so a page view costs no cloud request however
// often people look, and the cloud sees one scan per check.
package refresh

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/report"
)

// Result is what one check found.
type Result struct {
	// Drift is the drift check's document, as kiln drift prints it.
	Drift report.Drift
	// Checked are the channel manifests as the check read them: an entry
	// changed since is not covered by Drift.
	Checked []drift.Channel
	// Assets is the inventory, as kiln assets prints it.
	Assets report.Assets
}

// Snapshot is the state of the checks at one moment.
type Snapshot struct {
	// Result is that of the last check that succeeded; nil before one has.
	Result      *Result
	LastSuccess time.Time
	// Started, Ended and Err are those of the last check that ended,
	// whether it succeeded or not.
	Started, Ended time.Time
	Err            error
	// Running is true while a check runs.
	Running bool
	// Next is when the next scheduled check starts; zero when none is
	// scheduled.
	Next time.Time
	// Checks counts the checks that ended.
	Checks int
}

// Refresher runs the checks. Set its fields before Run; the zero values of
// Every (checks only at start and on demand) and Log (discard) work.
type Refresher struct {
	// Check does one check. It is the only part that calls the cloud.
	Check func(ctx context.Context) (Result, error)
	// Every is the time between two scheduled checks; 0 means none after
	// the first.
	Every time.Duration
	// Timeout bounds one check; 0 means 10 minutes.
	Timeout time.Duration
	Log     *slog.Logger

	once    sync.Once
	kick    chan struct{}
	mu      sync.Mutex
	snap    Snapshot
	waiters chan struct{} // closed when a check that starts after now ends
}

func (r *Refresher) init() {
	r.once.Do(func() { r.kick = make(chan struct{}, 1) })
}

// Snapshot returns the current state.
func (r *Refresher) Snapshot() Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snap
}

// Trigger asks for a check now and returns a channel that is closed when
// a check that started after the request has ended (one running at the
// time may have read the cloud before the change the caller wants seen,
// so another follows it). Requests made while a check waits to start
// share it.
func (r *Refresher) Trigger() <-chan struct{} {
	r.init()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiters == nil {
		r.waiters = make(chan struct{})
	}
	select {
	case r.kick <- struct{}{}:
	default: // a check is already asked for
	}
	return r.waiters
}

// Run checks at once, then every Every and whenever Trigger asks, until
// ctx ends.
func (r *Refresher) Run(ctx context.Context) {
	r.init()
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.kick:
			timer.Stop()
		}
		r.checkOnce(ctx, log)
		if ctx.Err() != nil {
			return
		}
		if r.Every > 0 {
			timer.Reset(r.Every)
			r.mu.Lock()
			r.snap.Next = time.Now().Add(r.Every)
			r.mu.Unlock()
		}
	}
}

// checkOnce runs one check and records its outcome.
func (r *Refresher) checkOnce(ctx context.Context, log *slog.Logger) {
	r.mu.Lock()
	waiters := r.waiters
	r.waiters = nil
	select {
	case <-r.kick: // this check answers any request made so far
	default:
	}
	r.snap.Running, r.snap.Next = true, time.Time{}
	r.mu.Unlock()

	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	start := time.Now()
	res, err := r.check(cctx)
	cancel()
	end := time.Now()

	r.mu.Lock()
	r.snap.Running = false
	r.snap.Started, r.snap.Ended, r.snap.Err = start, end, err
	r.snap.Checks++
	if err == nil {
		r.snap.Result, r.snap.LastSuccess = &res, end
	}
	r.mu.Unlock()
	if waiters != nil {
		close(waiters)
	}
	if err != nil {
		log.Error("drift check failed", "took", end.Sub(start).Round(time.Millisecond), "err", err)
		return
	}
	s := res.Drift.Summary
	log.Info("drift check", "took", end.Sub(start).Round(time.Millisecond), "checked", s.Checked, "in_sync", s.InSync,
		"warnings", s.Warnings, "orphans", s.Orphans, "assets", len(res.Assets.Assets))
}

// check calls Check, turning a panic into an error: a long-running server
// keeps serving the last results.
func (r *Refresher) check(ctx context.Context) (res Result, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("drift check panicked: %v", v)
		}
	}()
	return r.Check(ctx)
}
