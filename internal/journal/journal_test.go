package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTemp(t *testing.T) *Journal {
	t.Helper()
	j, err := Open(filepath.Join(t.TempDir(), "state", "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

// startRun records a run with a fresh id and returns the id.
func startRun(t *testing.T, j *Journal) string {
	t.Helper()
	id := NewAssetID(time.Now())
	if err := j.StartRun(context.Background(), Run{ID: id, UseCase: "uc"}); err != nil {
		t.Fatal(err)
	}
	return id
}

func pragma(t *testing.T, j *Journal, name string) string {
	t.Helper()
	var v string
	if err := j.db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

func TestOpenSettings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "j?x%20y.db") // characters that mean something in a URI
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("journal file not created at %s: %v", path, err)
	}
	for name, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"busy_timeout": "10000",
		"foreign_keys": "1",
		"user_version": fmt.Sprint(len(migrations)),
	} {
		if got := pragma(t, j, name); got != want {
			t.Errorf("PRAGMA %s = %s, want %s", name, got, want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	fileAsDir := filepath.Join(dir, "file")
	if err := os.WriteFile(fileAsDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	newer := filepath.Join(dir, "newer.db")
	j, err := Open(newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.db.Exec(fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	j.Close()

	tests := []struct {
		path string
		want []string
	}{
		{"", []string{"empty path"}},
		{garbage, []string{garbage}},
		{dir, []string{dir}},
		{filepath.Join(fileAsDir, "j.db"), []string{fileAsDir}},
		{newer, []string{newer, fmt.Sprintf("schema version %d is newer", len(migrations)+1)}},
	}
	for _, tt := range tests {
		j, err := Open(tt.path)
		if err == nil {
			j.Close()
			t.Errorf("Open(%q) succeeded, want an error", tt.path)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Open(%q) error %q does not contain %q", tt.path, err, w)
			}
		}
	}
}

func TestRunRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 11, 21, 10, 30, 12, 123456789, time.FixedZone("CET", 3600))
	want := Run{
		ID: NewAssetID(created), UseCase: "aws-linux-ephemeral", Arch: "x86_64", Version: "1.2.3",
		Created: created, Updated: created.Add(time.Second), State: RunRunning, Phase: "build", Host: "ci-7",
	}
	if err := j.StartRun(ctx, want); err != nil {
		t.Fatal(err)
	}
	// A rerun starts the same run again: no error, nothing changes.
	again := want
	again.UseCase, again.Phase, again.Created = "other", "publish", time.Now()
	if err := j.StartRun(ctx, again); err != nil {
		t.Fatalf("StartRun of an existing run: %v", err)
	}
	j.Close()

	// Read it back through a fresh handle, as another command would.
	j, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	got, steps, err := j.Run(ctx, want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 0 {
		t.Errorf("new run has %d steps", len(steps))
	}
	if !got.Created.Equal(want.Created) || !got.Updated.Equal(want.Updated) ||
		got.Created.Location() != time.UTC || got.Updated.Location() != time.UTC {
		t.Errorf("times: got %v, %v, want %v, %v in UTC", got.Created, got.Updated, want.Created, want.Updated)
	}
	got.Created, got.Updated, want.Created, want.Updated = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("Run = %+v, want %+v", got, want)
	}

	var raw string
	if err := j.db.QueryRow("SELECT created FROM runs WHERE id = ?", want.ID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	if raw != "2026-11-21T09:30:12.123456789Z" {
		t.Errorf("stored created = %q, want UTC RFC 3339 text", raw)
	}
}

func TestStartRunDefaultsAndErrors(t *testing.T) {
	ctx := context.Background()
	j := openTemp(t)
	before := time.Now()
	id := NewAssetID(before)
	if err := j.StartRun(ctx, Run{ID: id}); err != nil {
		t.Fatal(err)
	}
	r, _, err := j.Run(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if r.State != RunRunning || r.Host != host || r.Created.Before(before) || !r.Updated.Equal(r.Created) {
		t.Errorf("defaults: got %+v, want state running, host %q, created and updated now", r, host)
	}

	for _, tt := range []struct {
		r    Run
		want string
	}{
		{Run{}, `invalid asset id ""`},
		{Run{ID: "run-1"}, `invalid asset id "run-1"`},
		{Run{ID: NewAssetID(before), State: "done"}, `invalid run state "done"`},
	} {
		err := j.StartRun(ctx, tt.r)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("StartRun(%+v) = %v, want error containing %q", tt.r, err, tt.want)
		}
	}
	if runs, err := j.Runs(ctx); err != nil || len(runs) != 1 {
		t.Errorf("after bad StartRuns: %d runs, %v; want only the good one", len(runs), err)
	}
}

func TestSetRun(t *testing.T) {
	ctx := context.Background()
	j := openTemp(t)
	id := startRun(t, j)
	r0, _, _ := j.Run(ctx, id)

	steps := []struct {
		phase     string
		state     RunState
		wantPhase string
	}{
		{"build", RunRunning, "build"},
		{"test", RunRunning, "test"},
		{"", RunFailed, "test"}, // empty phase keeps the phase
		{"test", RunRunning, "test"},
		{"publish", RunSucceeded, "publish"},
	}
	prev := r0.Updated
	for _, s := range steps {
		if err := j.SetRun(ctx, id, s.phase, s.state); err != nil {
			t.Fatal(err)
		}
		r, _, err := j.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Phase != s.wantPhase || r.State != s.state {
			t.Errorf("after SetRun(%q, %q): phase %q state %q, want %q %q", s.phase, s.state, r.Phase, r.State, s.wantPhase, s.state)
		}
		if r.Updated.Before(prev) || !r.Created.Equal(r0.Created) {
			t.Errorf("after SetRun: updated %v (before %v), created %v (was %v)", r.Updated, prev, r.Created, r0.Created)
		}
		prev = r.Updated
	}

	if err := j.SetRun(ctx, NewAssetID(time.Now()), "build", RunRunning); !errors.Is(err, ErrUnknownRun) {
		t.Errorf("SetRun of an unknown run = %v, want ErrUnknownRun", err)
	}
	if err := j.SetRun(ctx, id, "build", "paused"); err == nil || !strings.Contains(err.Error(), `invalid run state "paused"`) {
		t.Errorf("SetRun with a bad state = %v", err)
	}
	if r, _, _ := j.Run(ctx, id); r.State != RunSucceeded {
		t.Errorf("a failed SetRun changed the state to %q", r.State)
	}
}

func TestSteps(t *testing.T) {
	ctx := context.Background()
	j := openTemp(t)
	id := startRun(t, j)
	other := startRun(t, j)

	type step struct {
		phase, name, region, detail string
		resource                    string
		err                         error
		end                         bool
	}
	plan := []step{
		{"build", "build-image", "local-a", "from debian", "img-1", nil, true},
		{"replicate", "copy", "local-b", "copy of img-1 from local-a", "img-2", nil, true},
		{"replicate", "copy", "local-c", "copy of img-1 from local-a", "", errors.New("quota exceeded"), true},
		{"replicate", "copy", "local-d", "", "", nil, false}, // killed before End
	}
	start := time.Now()
	var ids []int64
	for i, s := range plan {
		sid, err := j.Begin(ctx, id, s.phase, s.name, s.region, s.detail)
		if err != nil {
			t.Fatal(err)
		}
		// A step of another run in between must not show up in this one.
		if _, err := j.Begin(ctx, other, "build", fmt.Sprint("noise-", i), "x", ""); err != nil {
			t.Fatal(err)
		}
		if len(ids) > 0 && sid <= ids[len(ids)-1] {
			t.Errorf("step id %d not above the previous %d", sid, ids[len(ids)-1])
		}
		ids = append(ids, sid)
		_, got, _ := j.Run(ctx, id)
		if g := got[len(got)-1]; g.State != StepStarted || !g.Ended.IsZero() || g.ID != sid {
			t.Errorf("after Begin: step %+v, want started, no end time", g)
		}
	}
	for i, s := range plan {
		if s.end {
			if err := j.End(ctx, ids[i], s.resource, s.err); err != nil {
				t.Fatal(err)
			}
		}
	}
	end := time.Now()

	_, got, err := j.Run(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(plan) {
		t.Fatalf("run has %d steps, want %d: %+v", len(got), len(plan), got)
	}
	for i, s := range plan {
		g := got[i]
		wantState, wantErr := StepStarted, ""
		if s.end {
			wantState = StepSucceeded
			if s.err != nil {
				wantState, wantErr = StepFailed, s.err.Error()
			}
		}
		if g.ID != ids[i] || g.RunID != id || g.Phase != s.phase || g.Name != s.name || g.Region != s.region ||
			g.Detail != s.detail || g.Resource != s.resource || g.State != wantState || g.Error != wantErr {
			t.Errorf("step %d = %+v, want %+v in state %s, error %q", i, g, s, wantState, wantErr)
		}
		if g.Started.Before(start.Truncate(time.Microsecond)) || g.Started.After(end) || g.Started.Location() != time.UTC {
			t.Errorf("step %d started %v, not between %v and %v in UTC", i, g.Started, start, end)
		}
		if s.end == g.Ended.IsZero() || (s.end && g.Ended.Before(g.Started)) {
			t.Errorf("step %d ended %v (started %v), want an end time iff it ended", i, g.Ended, g.Started)
		}
	}

	// Ending again, ending an unknown step, and beginning in an unknown run fail.
	if err := j.End(ctx, ids[0], "img-x", nil); err == nil || !strings.Contains(err.Error(), "already ended as succeeded") {
		t.Errorf("End of an ended step = %v", err)
	}
	if err := j.End(ctx, 1<<40, "", nil); !errors.Is(err, ErrUnknownStep) {
		t.Errorf("End of an unknown step = %v, want ErrUnknownStep", err)
	}
	if _, err := j.Begin(ctx, "kiln-20000101T000000Z-000000", "build", "x", "r", ""); !errors.Is(err, ErrUnknownRun) {
		t.Errorf("Begin in an unknown run = %v, want ErrUnknownRun", err)
	}
	if _, err := j.Begin(ctx, id, "build", "", "r", ""); err == nil {
		t.Error("Begin with an empty name succeeded")
	}
	if _, after, _ := j.Run(ctx, id); len(after) != len(plan) || after[0].Resource != "img-1" {
		t.Errorf("failed calls changed the steps: %+v", after)
	}

	// Steps move the run's Updated time.
	r, _, _ := j.Run(ctx, id)
	if r.Updated.Before(got[len(got)-1].Started) {
		t.Errorf("run updated %v, before its last step began %v", r.Updated, got[len(got)-1].Started)
	}
}

func TestEndRedacts(t *testing.T) {
	ctx := context.Background()
	j := openTemp(t)
	id := startRun(t, j)
	sid, err := j.Begin(ctx, id, "build", "login", "r", "with password=opensesame")
	if err != nil {
		t.Fatal(err)
	}
	cause := fmt.Errorf("build: %w", errors.New("auth failed: aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"))
	if err := j.End(ctx, sid, "", cause); err != nil {
		t.Fatal(err)
	}
	// Look at the stored bytes, not only what Run returns.
	var detail, text string
	if err := j.db.QueryRow("SELECT detail, error FROM steps WHERE id = ?", sid).Scan(&detail, &text); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(detail, "opensesame") || strings.Contains(text, "wJalrXUtnFEMI") {
		t.Errorf("secret stored: detail %q, error %q", detail, text)
	}
	if !strings.HasPrefix(text, "build: auth failed: aws_secret_access_key=") {
		t.Errorf("stored error %q lost its context", text)
	}
}

func TestRunsNewestFirst(t *testing.T) {
	ctx := context.Background()
	j := openTemp(t)
	if runs, err := j.Runs(ctx); err != nil || len(runs) != 0 {
		t.Fatalf("empty journal: %v, %v", runs, err)
	}
	base := time.Date(2026, 11, 21, 9, 30, 12, 0, time.UTC)
	// Inserted out of order; the half second checks that the stored text
	// sorts as time (…12.5Z after …12Z).
	offsets := []time.Duration{2 * time.Second, 0, 500 * time.Millisecond, time.Hour, 1, -24 * time.Hour}
	for _, d := range offsets {
		if err := j.StartRun(ctx, Run{ID: NewAssetID(base.Add(d)), Created: base.Add(d)}); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := j.Runs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != len(offsets) {
		t.Fatalf("got %d runs, want %d", len(runs), len(offsets))
	}
	want := []time.Duration{time.Hour, 2 * time.Second, 500 * time.Millisecond, 1, 0, -24 * time.Hour}
	for i, r := range runs {
		if !r.Created.Equal(base.Add(want[i])) {
			t.Errorf("runs[%d] created %v, want %v", i, r.Created, base.Add(want[i]))
		}
	}
}

func TestRunUnknown(t *testing.T) {
	j := openTemp(t)
	startRun(t, j)
	for _, id := range []string{"", "nope", NewAssetID(time.Now())} {
		if _, _, err := j.Run(context.Background(), id); !errors.Is(err, ErrUnknownRun) || !strings.Contains(err.Error(), fmt.Sprintf("%q", id)) {
			t.Errorf("Run(%q) = %v, want ErrUnknownRun naming the id", id, err)
		}
	}
}

func TestCanceledContext(t *testing.T) {
	j := openTemp(t)
	id := startRun(t, j)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := j.Begin(ctx, id, "build", "x", "r", ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Begin with a canceled context = %v, want context.Canceled", err)
	}
	if _, steps, err := j.Run(context.Background(), id); err != nil || len(steps) != 0 {
		t.Errorf("after canceled Begin: %d steps, %v", len(steps), err)
	}
}

// The pipeline fans out across regions: goroutines share one Journal.
func TestGoroutines(t *testing.T) {
	ctx := context.Background()
	j := openTemp(t)
	id := startRun(t, j)
	const workers, each = 8, 20
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				sid, err := j.Begin(ctx, id, "replicate", fmt.Sprintf("copy-%d-%d", w, i), fmt.Sprint("region-", w), "")
				if err == nil {
					err = j.End(ctx, sid, fmt.Sprint("img-", sid), nil)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	_, steps, err := j.Run(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	names := make(map[string]bool)
	for _, s := range steps {
		if s.State != StepSucceeded || s.Resource != fmt.Sprint("img-", s.ID) {
			t.Errorf("step %+v not ended as succeeded with its resource", s)
		}
		names[s.Name] = true
	}
	if len(steps) != workers*each || len(names) != workers*each {
		t.Errorf("%d steps with %d distinct names, want %d", len(steps), len(names), workers*each)
	}
}

// A version kiln made up from the time is unique per use case and
// architecture, even when processes start runs in the same second.
func TestStartRunUnique(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "journal.db")
	var js []*Journal
	for range 2 { // two handles: two processes on one file
		j, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { j.Close() })
		js = append(js, j)
	}
	now := time.Date(2026, 12, 4, 22, 15, 0, 0, time.UTC)
	const base = "20261204.221500"

	// An explicit version is the caller's to repeat.
	if err := js[0].StartRun(ctx, Run{ID: NewAssetID(now), UseCase: "uc", Arch: "x86_64", Version: base}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	got := make([]string, n)
	errs := make([]error, n)
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		ids[i] = NewAssetID(now)
		wg.Go(func() {
			got[i], errs[i] = js[i%2].StartRunUnique(ctx, Run{ID: ids[i], UseCase: "uc", Arch: "x86_64", Version: base})
		})
	}
	wg.Wait()
	seen := map[string]bool{base: true}
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[got[i]] || !strings.HasPrefix(got[i], base+"-") {
			t.Errorf("run %d got version %q; taken: %v", i, got[i], seen)
		}
		seen[got[i]] = true
		if r, _, err := js[0].Run(ctx, ids[i]); err != nil || r.Version != got[i] {
			t.Errorf("run %d recorded %q, %v; returned %q", i, r.Version, err, got[i])
		}
	}
	for i := 2; i < n+2; i++ {
		if !seen[fmt.Sprintf("%s-%d", base, i)] {
			t.Errorf("versions %v skip %s-%d", seen, base, i)
		}
	}
	// A rerun keeps its version; another architecture or use case has its own.
	if v, err := js[1].StartRunUnique(ctx, Run{ID: ids[3], UseCase: "uc", Arch: "x86_64", Version: base}); err != nil || v != got[3] {
		t.Errorf("rerun: %q, %v; want %q", v, err, got[3])
	}
	for _, r := range []Run{{UseCase: "uc", Arch: "arm64"}, {UseCase: "other", Arch: "x86_64"}} {
		r.ID, r.Version = NewAssetID(now), base
		if v, err := js[0].StartRunUnique(ctx, r); err != nil || v != base {
			t.Errorf("%s %s: %q, %v; want %s", r.UseCase, r.Arch, v, err, base)
		}
	}
	if _, err := js[0].StartRunUnique(ctx, Run{ID: "bogus", UseCase: "uc", Version: base}); err == nil {
		t.Error("a bad id was accepted")
	}
}
