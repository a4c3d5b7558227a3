package pipeline

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
)

func isNotFound(err error) bool { return errors.Is(err, cloud.ErrNotFound) }

// RegionsError reports the regions where a fan-out step failed; the others
// succeeded. Rerunning the same command retries only the failed ones.
type RegionsError struct {
	Phase  string
	RunID  string
	Errors map[string]error // region -> error
}

func (e *RegionsError) Error() string {
	regions := make([]string, 0, len(e.Errors))
	for r := range e.Errors {
		regions = append(regions, r)
	}
	sort.Strings(regions)
	var b strings.Builder
	fmt.Fprintf(&b, "%s of run %s failed in %d region(s):", e.Phase, e.RunID, len(regions))
	for _, r := range regions {
		fmt.Fprintf(&b, "\n  %s: %v", r, e.Errors[r])
	}
	fmt.Fprintf(&b, "\nrerun to retry them: kiln %s --run %s", e.Phase, e.RunID)
	for _, r := range regions {
		fmt.Fprintf(&b, " --region %s", r)
	}
	return b.String()
}

// TestFailedError means the candidate booted and its tests failed (a finding,
// not an error of kiln's).
type TestFailedError struct {
	RunID   string
	Reason  string
	LogPath string
}

func (e *TestFailedError) Error() string {
	return fmt.Sprintf("run %s: tests failed: %s (console log: %s)", e.RunID, e.Reason, e.LogPath)
}

// NotTestedError means a phase that needs a tested image found none.
type NotTestedError struct {
	RunID string
	State string // "", "failed"
}

func (e *NotTestedError) Error() string {
	if e.State == cloud.TestFailed {
		return fmt.Sprintf("run %s failed its tests: nothing of it can be replicated or published", e.RunID)
	}
	return fmt.Sprintf("run %s has not passed its tests: run `kiln test --run %s` first", e.RunID, e.RunID)
}
