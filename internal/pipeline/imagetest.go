package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
)

// TestReport is the outcome of the test phase.
type TestReport struct {
	Run      Run             `json:"run"`
	Region   string          `json:"region"`
	ImageID  string          `json:"image_id"`
	Passed   bool            `json:"passed"`
	Reason   string          `json:"reason,omitempty"`
	LogPath  string          `json:"log_path,omitempty"`
	Duration config.Duration `json:"duration"` // how long the boot test took
	// Earlier is true when the candidate had already passed and was not
	// booted again.
	Earlier bool `json:"earlier"`
}

// Test boots the run's candidate and runs the recipe's tests in it, then
// records the result as a tag on the candidate (so later phases on other
// machines can see it). A candidate that already passed is not booted
// again unless force is set. Failed tests return a *TestFailedError.
func (p *Pipeline) Test(ctx context.Context, r Run, force bool) (TestReport, error) {
	return p.test(ctx, r, nil, force, nil)
}

// test is Test. A candidate the caller has just built is given as known
// (nil: look it up). With bg set and a backend that can, the wait until
// the test instance is gone runs in bg.
func (p *Pipeline) test(ctx context.Context, r Run, known *cloud.Image, force bool, bg *background) (TestReport, error) {
	u, err := p.useCase(r)
	if err != nil {
		return TestReport{}, err
	}
	var cand cloud.Image
	if known != nil {
		cand = *known
	} else if cand, err = p.Candidate(ctx, r); err != nil {
		return TestReport{}, err
	}
	rep := TestReport{Run: r, Region: cand.Region, ImageID: cand.ID}
	if cand.Tags[cloud.TagTest] == cloud.TestPassed && !force {
		rep.Passed, rep.Earlier = true, true
		return rep, nil
	}
	if err := p.Journal.SetRun(ctx, r.ID, cloud.PhaseTest, journal.RunRunning); err != nil {
		return rep, fmt.Errorf("journal: %w", err)
	}
	if cand.State != cloud.StateAvailable {
		if cand, err = p.Backend.WaitImage(ctx, cand.Region, cand.ID); err != nil {
			return rep, err
		}
	}

	var (
		res  cloud.TestResult
		wait func(context.Context) error
	)
	logPath := filepath.Join(p.runDir(r.ID), "test-console.log")
	if err := os.MkdirAll(p.runDir(r.ID), 0o755); err != nil {
		return rep, err
	}
	in := cloud.TestInput{
		Region:   cand.Region,
		ImageID:  cand.ID,
		Tests:    u.Tests,
		Dir:      p.Config.Dir,
		StateDir: p.Config.StateDir(),
		LogPath:  logPath,
		Tags:     p.tags(r, cloud.PhaseTest),
		Token:    cloud.Token(r.ID, cloud.PhaseTest, cand.Region),
		Progress: p.Progress,
		Secrets:  p.secrets(),
		Arch:     cand.Architecture,
		Fresh:    p.firstTry(r, cloud.PhaseTest, "boot", cand.Region),
	}
	deferring, canDefer := p.Backend.(cleanupDeferringTester)
	err = p.step(ctx, r, cloud.PhaseTest, "boot", cand.Region, cand.ID, func(ctx context.Context) (string, error) {
		if bg != nil && canDefer {
			res, wait, err = deferring.TestImageDeferCleanup(ctx, in)
		} else {
			res, err = p.Backend.TestImage(ctx, in)
		}
		if err == nil && !res.Passed {
			return cand.ID, fmt.Errorf("tests failed: %s", res.Reason)
		}
		return cand.ID, err
	})
	if wait != nil {
		// The instance is on its way out; confirming it is gone can
		// overlap with what follows.
		bg.Go(cloud.PhaseTest, func() error {
			return p.step(ctx, r, cloud.PhaseTest, "remove instance", cand.Region, cand.ID, func(ctx context.Context) (string, error) {
				return cand.ID, wait(ctx)
			})
		})
	}
	rep.Passed, rep.Reason, rep.Duration, rep.LogPath = res.Passed, res.Reason, took(res.Duration), res.LogPath
	if rep.LogPath == "" {
		rep.LogPath = logPath
	}
	if err != nil && !(res.Reason != "" && !res.Passed) {
		p.failRun(ctx, r, cloud.PhaseTest)
		return rep, fmt.Errorf("test run %s: %w", r.ID, err)
	}

	result := cloud.TestFailed
	if res.Passed {
		result = cloud.TestPassed
	}
	err = p.step(ctx, r, cloud.PhaseTest, "record result", cand.Region, result, func(ctx context.Context) (string, error) {
		return cand.ID, p.Backend.TagImage(ctx, cand.Region, cand.ID, map[string]string{cloud.TagTest: result})
	})
	if err != nil {
		return rep, err
	}
	if !res.Passed {
		p.failRun(ctx, r, cloud.PhaseTest)
		return rep, &TestFailedError{RunID: r.ID, Reason: res.Reason, LogPath: rep.LogPath}
	}
	return rep, nil
}
