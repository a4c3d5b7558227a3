package cloud

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Token derives a deterministic idempotency token from its parts (asset id,
// step, region...). It is 32 hex digits, valid as an EC2 ClientToken.
func Token(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:16])
}

// TimeoutError says what a wait was waiting for when its deadline passed.
type TimeoutError struct {
	What    string
	Timeout time.Duration
	Last    error // the last condition error, if any
}

func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("timed out after %s waiting for %s", e.Timeout, e.What)
	if e.Last != nil {
		msg += " (last error: " + e.Last.Error() + ")"
	}
	return msg
}

func (e *TimeoutError) Unwrap() error { return e.Last }

// Poll calls cond every interval (with up to 20% jitter) until it reports
// done, returns a final error, or timeout passes. Errors that Retryable
// accepts are retried until the deadline.
func Poll(ctx context.Context, what string, interval, timeout time.Duration, cond func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		done, err := cond(ctx)
		switch {
		case err == nil && done:
			return nil
		case err != nil && !Retryable(err):
			return err
		}
		last = err
		if time.Now().Add(interval).After(deadline) {
			return &TimeoutError{What: what, Timeout: timeout, Last: last}
		}
		jitter := time.Duration(rand.Int64N(int64(interval)/5 + 1))
		t := time.NewTimer(interval + jitter)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

// Retry runs fn until it succeeds, fails with an error Retryable does not
// accept, or attempts run out, sleeping with exponential backoff and full
// jitter between attempts.
func Retry(ctx context.Context, attempts int, base, max time.Duration, fn func(context.Context) error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if err = fn(ctx); err == nil || !Retryable(err) {
			return err
		}
		if i == attempts-1 {
			break
		}
		d := base << i
		if d > max || d <= 0 {
			d = max
		}
		t := time.NewTimer(time.Duration(rand.Int64N(int64(d)) + 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (retry stopped: %v)", err, ctx.Err())
		case <-t.C:
		}
	}
	return err
}
