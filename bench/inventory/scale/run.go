package scale

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"time"
)

// Result is one run of the kiln binary.
type Result struct {
	Wall time.Duration
	// CPU is the user and system time the process used: on a busy machine
	// it varies far less than the wall time.
	CPU            time.Duration
	Code           int
	Stdout, Stderr []byte
}

// Kiln runs the kiln binary bin with args and env (added to nothing: the
// caller passes the whole environment) and measures its wall time, start to
// exit, as a user would see it.
func Kiln(ctx context.Context, bin string, env []string, args ...string) (Result, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	res := Result{Wall: time.Since(start), Stdout: out.Bytes(), Stderr: errb.Bytes()}
	if ps := cmd.ProcessState; ps != nil {
		res.CPU = ps.UserTime() + ps.SystemTime()
	}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.Code = ee.ExitCode()
	case err != nil:
		return res, fmt.Errorf("run %s: %w", bin, err)
	}
	return res, nil
}

// Median returns the median of ds (the mean of the middle two for an even
// count).
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Seconds formats d as seconds with three decimals.
func Seconds(d time.Duration) string { return fmt.Sprintf("%.3f s", d.Seconds()) }
