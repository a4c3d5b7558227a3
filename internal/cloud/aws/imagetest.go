package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// TestImage boots the image on a temporary instance whose user data runs
// in.Tests and prints a marker line on the console, then powers off. It
// polls the console output until the marker appears or in.Timeout passes,
// keeps the console text at in.LogPath and always terminates the instance.
// The instance is tagged with in.Tags (phase test) and found again by its
// token, so a rerun does not start a second one.
func (b *Backend) TestImage(ctx context.Context, in cloud.TestInput) (res cloud.TestResult, err error) {
	switch {
	case in.ImageID == "":
		return res, cloud.Mark(fmt.Errorf("test image: empty image id"), cloud.ErrInvalid)
	case in.Token == "":
		return res, cloud.Mark(fmt.Errorf("test image %s: empty token", in.ImageID), cloud.ErrInvalid)
	case len(in.Tests) == 0:
		return res, cloud.Mark(fmt.Errorf("test image %s: no tests to run", in.ImageID), cloud.ErrInvalid)
	}
	tags := withTags(in.Tags, map[string]string{cloud.TagPhase: cloud.PhaseTest, cloud.TagToken: in.Token})
	if err := checkTags(tags); err != nil {
		return res, fmt.Errorf("test image %s: %w", in.ImageID, err)
	}
	script, err := testScript(in.Dir, in.Tests)
	if err != nil {
		return res, cloud.Mark(fmt.Errorf("test image %s: %w", in.ImageID, err), cloud.ErrInvalid)
	}
	ud, err := encodeUserData(script)
	if err != nil {
		return res, cloud.Mark(fmt.Errorf("test image %s: %w", in.ImageID, err), cloud.ErrInvalid)
	}
	if err := b.CheckAccount(ctx); err != nil {
		return res, err
	}
	c, err := b.clients.region(in.Region)
	if err != nil {
		return res, err
	}
	im, err := b.describeImage(ctx, in.Region, in.ImageID)
	if err != nil {
		return res, fmt.Errorf("test image: %w", err)
	}
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = b.cfg.TestTimeout.Std()
	}
	if timeout <= 0 {
		timeout = defaultTestTimeout
	}
	start := time.Now()
	done := step(in.Progress, "boot "+in.ImageID)
	defer func() { done(err) }()

	id, err := b.testInstance(ctx, c, in, im, ud, tags)
	if err != nil {
		return res, err
	}
	// The instance goes, whatever happened: also when ctx is cancelled.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Minute)
		defer cancel()
		if terr := b.terminate(cctx, c, id); terr != nil {
			err = errors.Join(err, fmt.Errorf("remove test instance: %w", terr))
		}
	}()

	console, mk, err := b.waitMarker(ctx, c, id, timeout)
	res = cloud.TestResult{Duration: time.Since(start), LogPath: in.LogPath}
	if werr := writeLog(in.LogPath, console); werr != nil {
		return res, werr
	}
	var te *cloud.TimeoutError
	switch {
	case errors.As(err, &te):
		res.Reason = fmt.Sprintf("timed out after %s waiting for the test marker", timeout)
		return res, nil
	case err != nil:
		return res, err
	case mk.passed:
		res.Passed = true
	case mk.found:
		res.Reason = testFailure(mk.detail)
	default:
		res.Reason = "the instance powered off without printing the test marker"
	}
	return res, nil
}

// testInstance returns the test instance of in.Token, starting it unless
// an earlier attempt did.
func (b *Backend) testInstance(ctx context.Context, c *regional, in cloud.TestInput, im ec2types.Image, ud string, tags map[string]string) (string, error) {
	if inst, ok, err := instanceByToken(ctx, c, in.Token); err != nil {
		return "", err
	} else if ok {
		return *inst.InstanceId, nil
	}
	return b.runInstance(ctx, c, instanceSpec{
		ImageID:      in.ImageID,
		InstanceType: b.instanceType(string(im.Architecture)),
		UserData:     ud,
		SubnetID:     b.cfg.SubnetID,
		Tags:         tags,
		Token:        in.Token,
	})
}

// waitMarker polls the console until a test marker shows, the instance
// has stopped and a few more reads show none (the console lags behind the
// guest), or timeout passes.
func (b *Backend) waitMarker(ctx context.Context, c *regional, id string, timeout time.Duration) (string, marker, error) {
	var (
		console     string
		mk          marker
		readsAfter  int
		stoppedSeen bool
	)
	err := b.poll(ctx, fmt.Sprintf("the test marker on the console of %s in %s", id, c.region), timeout, func(ctx context.Context) (bool, error) {
		text, err := consoleOutput(ctx, c, id)
		if err != nil {
			return false, err
		}
		if len(text) >= len(console) {
			// Latest output may be a window; keep the longest seen.
			console = text
		}
		if mk = findMarker(text, testMarker); mk.found {
			return true, nil
		}
		if !stoppedSeen {
			insts, err := describeInstances(ctx, c, nil, id)
			if err != nil {
				return false, err
			}
			if len(insts) > 0 {
				s := instanceState(insts[0])
				stoppedSeen = s == ec2types.InstanceStateNameStopped || s == ec2types.InstanceStateNameTerminated
			}
		}
		if stoppedSeen {
			readsAfter++
			return readsAfter > 3, nil
		}
		return false, nil
	})
	return console, mk, err
}

func writeLog(path, text string) error {
	if path == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("keep console log: %w", err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("keep console log: %w", err)
	}
	return nil
}

// step starts a progress step when p is set.
func step(p cloud.Progress, name string) func(error) {
	if p == nil {
		return func(error) {}
	}
	return p.Step(name)
}
