package refresh

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/report"
)

// start runs r until the test ends.
func start(t *testing.T, r *Refresher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func result(inSync int) Result {
	return Result{Drift: report.NewDrift([]string{"latest"}, drift.Report{Summary: drift.Summary{InSync: inSync}})}
}

func TestChecksAtStartAndOnDemand(t *testing.T) {
	var calls atomic.Int32
	r := &Refresher{Check: func(ctx context.Context) (Result, error) {
		return result(int(calls.Add(1))), nil
	}}
	if s := r.Snapshot(); s.Result != nil || s.Checks != 0 {
		t.Fatalf("before Run: %+v", s)
	}
	start(t, r)
	waitFor(t, "the first check", func() bool { return r.Snapshot().Checks == 1 })
	s := r.Snapshot()
	if s.Result == nil || s.Result.Drift.Summary.InSync != 1 || s.Err != nil || s.LastSuccess.IsZero() || !s.Next.IsZero() {
		t.Fatalf("after the first check: %+v", s)
	}
	// With no schedule nothing else runs on its own.
	time.Sleep(50 * time.Millisecond)
	if calls.Load() != 1 {
		t.Fatalf("%d checks without a schedule or a trigger", calls.Load())
	}
	select {
	case <-r.Trigger():
	case <-time.After(10 * time.Second):
		t.Fatal("triggered check did not end")
	}
	if s := r.Snapshot(); s.Result.Drift.Summary.InSync != 2 || s.Checks != 2 {
		t.Fatalf("after the triggered check: %+v", s)
	}
}

// A trigger during a running check gets a check that starts after it;
// triggers made while that one waits share it.
func TestTriggerDuringACheck(t *testing.T) {
	release := make(chan struct{})
	started := make(chan int, 10)
	var calls atomic.Int32
	r := &Refresher{Check: func(ctx context.Context) (Result, error) {
		n := int(calls.Add(1))
		started <- n
		if n == 1 {
			<-release
		}
		return result(n), nil
	}}
	start(t, r)
	<-started // the first check runs and waits
	waitFor(t, "running", func() bool { return r.Snapshot().Running })
	a, b := r.Trigger(), r.Trigger()
	close(release)
	<-a
	<-b
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d checks, want 2 (the running one and one for both triggers)", n)
	}
	if s := r.Snapshot(); s.Result.Drift.Summary.InSync != 2 {
		t.Fatalf("the triggers' check's result is not the one kept: %+v", s.Result.Drift.Summary)
	}
}

// A failed check keeps the last good result and says why it failed; a
// panic in the check is a failed check, not a dead server.
func TestFailedCheckKeepsLastResult(t *testing.T) {
	var calls atomic.Int32
	r := &Refresher{Every: 20 * time.Millisecond, Check: func(ctx context.Context) (Result, error) {
		switch calls.Add(1) {
		case 1:
			return result(7), nil
		case 2:
			return Result{}, errors.New("cloud unreachable")
		default:
			panic("boom")
		}
	}}
	start(t, r)
	waitFor(t, "three scheduled checks", func() bool { return r.Snapshot().Checks >= 3 })
	s := r.Snapshot()
	if s.Result == nil || s.Result.Drift.Summary.InSync != 7 {
		t.Fatalf("last good result lost: %+v", s.Result)
	}
	if s.Err == nil || s.LastSuccess.After(s.Ended) || s.LastSuccess.Equal(s.Ended) {
		t.Fatalf("failure not recorded: err %v, last success %s, ended %s", s.Err, s.LastSuccess, s.Ended)
	}
	if s.Next.IsZero() && !s.Running {
		t.Fatalf("no next check scheduled: %+v", s)
	}
}

// A check that takes longer than Timeout is cancelled.
func TestTimeout(t *testing.T) {
	r := &Refresher{Timeout: 20 * time.Millisecond, Check: func(ctx context.Context) (Result, error) {
		<-ctx.Done()
		return Result{}, ctx.Err()
	}}
	start(t, r)
	waitFor(t, "the check to time out", func() bool { return r.Snapshot().Checks == 1 })
	if err := r.Snapshot().Err; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v", err)
	}
}
