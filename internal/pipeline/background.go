package pipeline

import (
	"context"
	"errors"
	"sync"

	"github.com/kiln-images/kiln/internal/cloud"
)

// cleanupDeferringBuilder is implemented by backends whose build can
// return as soon as the image is ready, handing back the removal of its
// temporary resources as a function to call (aws: BuildDeferCleanup).
// Until that function has returned nil the resources exist; a crash
// leaves them for a rerun of Build or for cleanup, as any crash does.
type cleanupDeferringBuilder interface {
	BuildDeferCleanup(ctx context.Context, in cloud.BuildInput) (cloud.Image, func(context.Context) error, error)
}

// cleanupDeferringTester is implemented by backends whose boot test can
// return once its instance has been told to go, handing back the wait
// until it is gone (nil: nothing to wait for) (aws:
// TestImageDeferCleanup).
type cleanupDeferringTester interface {
	TestImageDeferCleanup(ctx context.Context, in cloud.TestInput) (cloud.TestResult, func(context.Context) error, error)
}

// background runs what `kiln release` lets overlap with its later phases —
// removing temporary resources that only the phase which made them needed —
// and collects the errors. Release waits for it before it makes anything
// public and before it returns, and reports what failed.
type background struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	failed string // the phase of the first error
}

// Go runs fn, part of phase, in the background.
func (bg *background) Go(phase string, fn func() error) {
	bg.wg.Go(func() {
		if err := fn(); err != nil {
			bg.mu.Lock()
			if len(bg.errs) == 0 {
				bg.failed = phase
			}
			bg.errs = append(bg.errs, err)
			bg.mu.Unlock()
		}
	})
}

// Wait waits for everything Go started and returns their errors joined,
// and the phase of the first.
func (bg *background) Wait() (phase string, err error) {
	bg.wg.Wait()
	bg.mu.Lock()
	defer bg.mu.Unlock()
	return bg.failed, errors.Join(bg.errs...)
}

// async starts fn and returns a function that waits for it and returns
// its error, as often as it is called.
func async(fn func() error) func() error {
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = fn()
	}()
	return func() error {
		<-done
		return err
	}
}
