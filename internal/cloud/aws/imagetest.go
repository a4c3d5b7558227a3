package aws

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/redact"
)

// TestImage boots the image on a temporary instance whose user data runs
// in.Tests and prints a marker line on the console, then powers off. It
// polls the console output until the marker appears or in.Timeout passes,
// keeps the console text at in.LogPath and always terminates the instance.
// The instance is tagged with in.Tags (phase test) and found again by its
// token, so a rerun does not start a second one.
func (b *Backend) TestImage(ctx context.Context, in cloud.TestInput) (cloud.TestResult, error) {
	res, wait, err := b.TestImageDeferCleanup(ctx, in)
	if wait != nil {
		// Also when ctx is cancelled: the instance was told to go.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Minute)
		defer cancel()
		if werr := wait(wctx); werr != nil {
			err = errors.Join(err, werr)
		}
	}
	return res, err
}

// TestImageDeferCleanup is TestImage returning once EC2 has accepted the
// termination of the test instance, with the wait until it is gone left to
// the returned function (nil when there is nothing to wait for), so that a
// caller can overlap that wait with other work. A terminating instance
// needs nothing more from kiln: it goes even if the caller dies.
func (b *Backend) TestImageDeferCleanup(ctx context.Context, in cloud.TestInput) (res cloud.TestResult, wait func(context.Context) error, err error) {
	switch {
	case in.ImageID == "":
		return res, nil, cloud.Mark(fmt.Errorf("test image: empty image id"), cloud.ErrInvalid)
	case in.Token == "":
		return res, nil, cloud.Mark(fmt.Errorf("test image %s: empty token", in.ImageID), cloud.ErrInvalid)
	case len(in.Tests) == 0:
		return res, nil, cloud.Mark(fmt.Errorf("test image %s: no tests to run", in.ImageID), cloud.ErrInvalid)
	}
	tags := withTags(in.Tags, map[string]string{cloud.TagPhase: cloud.PhaseTest, cloud.TagToken: in.Token})
	if err := checkTags(tags); err != nil {
		return res, nil, fmt.Errorf("test image %s: %w", in.ImageID, err)
	}
	bd, err := testBundle(in.Dir, in.Tests)
	if err != nil {
		return res, nil, cloud.Mark(fmt.Errorf("test image %s: %w", in.ImageID, err), cloud.ErrInvalid)
	}
	var ud []byte
	if b.cfg.Bucket == "" {
		if ud, err = bootstrap(bd, "", testMarker); err != nil {
			return res, nil, cloud.Mark(fmt.Errorf("test image %s: %w", in.ImageID, err), cloud.ErrInvalid)
		}
	}
	if err := b.checkLocation(ctx, in.Region); err != nil {
		return res, nil, err
	}
	c, err := b.clients.region(in.Region)
	if err != nil {
		return res, nil, err
	}
	// The image (for its architecture) and an instance an earlier attempt
	// started are looked up at once, while the test bundle is staged.
	var (
		im    ec2types.Image
		inst  ec2types.Instance
		found bool
		st    staged
	)
	err = together(func() error {
		if ud != nil {
			return nil
		}
		var err error
		if st, err = b.stage(ctx, c, bd, in.Tags, in.Token); err != nil {
			return fmt.Errorf("test image %s: %w", in.ImageID, err)
		}
		return nil
	}, func() error {
		if in.Arch != "" {
			im.Architecture = ec2types.ArchitectureValues(in.Arch)
			return nil // RunInstances says so if the image is gone
		}
		var err error
		if im, err = b.describeImage(ctx, in.Region, in.ImageID); err != nil {
			return fmt.Errorf("test image: %w", err)
		}
		return nil
	}, func() error {
		if in.Fresh {
			return nil
		}
		var err error
		inst, found, err = instanceByToken(ctx, c, in.Token)
		return err
	})
	if err != nil {
		return res, nil, err
	}
	if ud == nil {
		if ud, err = bootstrap(bd, st.url, testMarker); err != nil {
			return res, nil, err
		}
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

	id := aws.ToString(inst.InstanceId)
	if !found {
		if id, err = b.runInstance(ctx, c, instanceSpec{
			ImageID:      in.ImageID,
			InstanceType: b.instanceType(string(im.Architecture)),
			UserData:     encodeUserData(ud),
			SubnetID:     b.cfg.SubnetID,
			Tags:         tags,
			Token:        in.Token,
		}); err != nil {
			return res, nil, errors.Join(err, b.unstage(context.WithoutCancel(ctx), c, in.Tags, in.Token))
		}
	}
	// The instance goes, whatever happened: also when ctx is cancelled;
	// the staged bundle with it.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Minute)
		defer cancel()
		var terr, uerr error
		together(func() error {
			terr = b.terminateRequest(cctx, c, id)
			return nil
		}, func() error {
			uerr = b.unstage(cctx, c, in.Tags, in.Token)
			return nil
		})
		if uerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the test bundle: %w", uerr))
		}
		if terr != nil {
			err = errors.Join(err, fmt.Errorf("remove test instance: %w", terr))
			return
		}
		wait = func(ctx context.Context) error {
			if err := b.waitTerminated(ctx, c, id); err != nil {
				return fmt.Errorf("remove test instance: %w", err)
			}
			return nil
		}
	}()

	console, mk, err := b.waitMarker(ctx, c, id, timeout)
	res = cloud.TestResult{Duration: time.Since(start), LogPath: in.LogPath}
	var secrets redact.Secrets
	secrets.Add(in.Secrets...)
	if werr := writeLog(in.LogPath, secrets.String(console)); werr != nil {
		return res, nil, werr
	}
	var te *cloud.TimeoutError
	switch {
	case errors.As(err, &te):
		res.Reason = fmt.Sprintf("timed out after %s waiting for the test marker", timeout)
		return res, nil, nil
	case err != nil:
		return res, nil, err
	case mk.passed:
		res.Passed = true
	case mk.found:
		res.Reason = testFailure(mk.detail)
	default:
		res.Reason = "the instance powered off without printing the test marker"
	}
	return res, nil, nil
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
