package aws

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// errConfirm asks poll to read again after the short confirmation pause
// (see confirmPause), for reads that confirm what the last one saw.
var errConfirm = errors.New("confirm with another read")

// poll calls cond until it reports done, fails with an error that is not
// retryable, or timeout passes. The pause starts at the backend's poll
// interval and grows by half each time up to its maximum, with jitter;
// errors cloud.Retryable accepts are retried until the deadline. A cond
// that answers errConfirm is asked again after the confirmation pause, and
// the next ordinary pause starts again at the poll interval. On timeout the
// error says what it waited for and the last thing it saw.
func (b *Backend) poll(ctx context.Context, what string, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	interval := b.opts.pollInterval
	var last error
	for {
		done, err := cond(ctx)
		wait := interval
		switch {
		case err == nil && done:
			return nil
		case errors.Is(err, errConfirm):
			wait, interval = b.confirmPause(), b.opts.pollInterval
			err = nil
		case err != nil && !cloud.Retryable(err):
			return err
		default:
			interval = min(interval*3/2, b.opts.pollMax)
		}
		if err != nil {
			last = err
		}
		if !time.Now().Add(wait).Before(deadline) {
			return &cloud.TimeoutError{What: what, Timeout: timeout, Last: last}
		}
		pause := wait + time.Duration(rand.Int64N(int64(wait)/5+1))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// confirmPause is the pause before a read that confirms the last one: a
// fifth of the poll interval unless WithConfirmPause set it. The poll
// interval is sized for how slowly a pending image or instance changes
// (minutes on AWS); a confirming read only has to be a separate request,
// answered later and possibly by another replica of the endpoint, so that
// one answer from a replica that is ahead of the others is not taken as
// final. A full interval there would idle twice on every wait for nothing.
func (b *Backend) confirmPause() time.Duration {
	if b.opts.confirmPause > 0 {
		return b.opts.confirmPause
	}
	return max(b.opts.pollInterval/5, time.Millisecond)
}

// WaitAvailable waits until the image is available, within
// backend.aws.copy_timeout. An image the wait sees pending (or not yet
// visible) and then available is taken at that read: the waiter saw the
// state change. An image available from the first read is confirmed by
// the backend's number of consecutive reads (default 3, spaced by the
// short confirmation pause): one answer might come from a replica that is
// ahead of the one the next call reaches. A failed image is an error
// carrying its state reason; an image that stays absent is ErrNotFound.
func (b *Backend) WaitAvailable(ctx context.Context, region, id string) (cloud.Image, error) {
	im, err := b.waitAvailable(ctx, region, id)
	if err != nil {
		return cloud.Image{}, err
	}
	return toImage(region, im), nil
}

// waitAvailable is WaitAvailable returning the SDK's description from the
// last confirming read, so callers that need more of the image (its
// snapshots, its tags) do not read it once more.
func (b *Backend) waitAvailable(ctx context.Context, region, id string) (ec2types.Image, error) {
	var (
		img       ec2types.Image
		streak    int
		missing   int
		lastState string
		changed   bool // the wait has seen the image not available yet
	)
	what := fmt.Sprintf("image %s in %s to become available (%d consecutive reads)", id, region, b.opts.stableReads)
	err := b.poll(ctx, what, b.copyTimeout(), func(ctx context.Context) (bool, error) {
		im, err := b.describeImage(ctx, region, id)
		switch {
		case errors.Is(err, cloud.ErrNotFound):
			// A new image can be missing from a read for a moment.
			missing++
			streak = 0
			if missing > 5 {
				return false, err
			}
			lastState = "not found"
			changed = true
			return false, cloud.Mark(fmt.Errorf("image %s not visible yet", id), cloud.ErrNotYet)
		case err != nil:
			return false, err
		}
		img = im
		lastState = string(im.State)
		switch imageState(im.State) {
		case cloud.StateAvailable:
			streak++
			if changed || streak >= b.opts.stableReads {
				return true, nil
			}
			return false, errConfirm
		case cloud.StateFailed:
			return false, fmt.Errorf("image %s in %s is %s: %s", id, region, im.State, stateReason(im.StateReason))
		}
		streak, changed = 0, true
		return false, nil
	})
	if err != nil {
		var te *cloud.TimeoutError
		if errors.As(err, &te) && te.Last == nil {
			te.Last = fmt.Errorf("last state %s", lastState)
		}
		return ec2types.Image{}, err
	}
	return img, nil
}

func stateReason(r *ec2types.StateReason) string {
	if r == nil {
		return "no reason given"
	}
	return fmt.Sprintf("%s: %s", aws.ToString(r.Code), aws.ToString(r.Message))
}

// WaitImage is WaitAvailable under the name cloud.Images uses.
func (b *Backend) WaitImage(ctx context.Context, region, id string) (cloud.Image, error) {
	return b.WaitAvailable(ctx, region, id)
}
