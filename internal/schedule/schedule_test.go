package schedule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/config"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestJobNext(t *testing.T) {
	tests := []struct {
		cron, after string
		want        []string
	}{
		{"0 3 * * *", "2026-11-21T02:59:30Z", []string{"2026-11-21T03:00:00Z", "2026-11-22T03:00:00Z"}},
		// Strictly after: a release that starts at 03:00 does not start
		// again at 03:00.
		{"0 3 * * *", "2026-11-21T03:00:00Z", []string{"2026-11-22T03:00:00Z", "2026-11-23T03:00:00Z"}},
		{"0 3 * * 1", "2026-11-21T12:00:00Z", []string{"2026-11-23T03:00:00Z", "2026-11-30T03:00:00Z"}},
		{"*/15 * * * *", "2026-11-21T10:07:00Z", []string{"2026-11-21T10:15:00Z", "2026-11-21T10:30:00Z"}},
		{"30 1 1 * *", "2026-12-15T00:00:00Z", []string{"2027-01-01T01:30:00Z", "2027-02-01T01:30:00Z"}},
		// A time in another zone is read as the same instant in UTC.
		{"0 3 * * *", "2026-11-21T03:30:00+01:00", []string{"2026-11-21T03:00:00Z", "2026-11-22T03:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.cron+" after "+tt.after, func(t *testing.T) {
			got, err := Job{UseCase: "u", Arch: "x86_64", Cron: tt.cron}.Times(at(tt.after), len(tt.want))
			if err != nil {
				t.Fatal(err)
			}
			var s []string
			for _, g := range got {
				s = append(s, g.Format(time.RFC3339))
			}
			if !slices.Equal(s, tt.want) {
				t.Errorf("Times = %v, want %v", s, tt.want)
			}
		})
	}
}

func TestJobs(t *testing.T) {
	cfg := &config.Config{UseCases: map[string]*config.UseCase{
		"b-runner":  {Architectures: []string{"x86_64", "arm64"}, Schedule: "0 3 * * *"},
		"a-sandbox": {Architectures: []string{"x86_64"}, Schedule: "0 4 * * 1"},
		"manual":    {Architectures: []string{"x86_64"}},
	}}
	got := Jobs(cfg)
	want := []Job{
		{"a-sandbox", "x86_64", "0 4 * * 1"},
		{"b-runner", "x86_64", "0 3 * * *"},
		{"b-runner", "arm64", "0 3 * * *"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Jobs = %v, want %v", got, want)
	}
}

// fakeClock is a clock that moves only when the scheduler sleeps or a
// release takes time.
type fakeClock struct {
	now    time.Time
	sleeps int
	limit  int // sleeps that pass; the next one ends ctx
	cancel context.CancelFunc
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.sleeps++
	if c.sleeps > c.limit {
		c.cancel()
		return ctx.Err()
	}
	if d < 0 {
		return fmt.Errorf("asked to sleep %s", d)
	}
	c.now = c.now.Add(d)
	return nil
}

type started struct {
	job Job
	at  time.Time
}

func newScheduler(t *testing.T, jobs []Job, start string, sleeps int, release func(*fakeClock, Job) (string, error)) (*Scheduler, *fakeClock, *[]started, context.Context, *strings.Builder) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	clock := &fakeClock{now: at(start), limit: sleeps, cancel: cancel}
	var runs []started
	var log strings.Builder
	s := &Scheduler{
		Jobs: jobs,
		Release: func(ctx context.Context, j Job) (string, error) {
			runs = append(runs, started{j, clock.now})
			return release(clock, j)
		},
		Log:   slog.New(slog.NewTextHandler(&log, nil)),
		Now:   clock.Now,
		Sleep: clock.Sleep,
	}
	return s, clock, &runs, ctx, &log
}

func TestSchedulerRunsDueJobsInTurn(t *testing.T) {
	jobs := []Job{
		{"daily", "x86_64", "0 3 * * *"},
		{"daily", "arm64", "0 3 * * *"},
		{"hourly", "x86_64", "0 * * * *"},
	}
	s, _, runs, ctx, _ := newScheduler(t, jobs, "2026-11-21T01:30:00Z", 3, func(c *fakeClock, j Job) (string, error) {
		c.now = c.now.Add(10 * time.Minute) // each release takes 10 minutes
		return "kiln-" + j.UseCase, nil
	})
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var got []string
	for _, r := range *runs {
		got = append(got, r.job.String()+"@"+r.at.Format("15:04"))
	}
	// 02:00 hourly; 03:00 all three due, one after another (each 10
	// minutes later); 04:00 hourly; then the fourth sleep stops it.
	want := []string{
		"hourly x86_64@02:00",
		"daily x86_64@03:00", "daily arm64@03:10", "hourly x86_64@03:20",
		"hourly x86_64@04:00",
	}
	if !slices.Equal(got, want) {
		t.Errorf("releases:\n got %v\nwant %v", got, want)
	}
}

func TestSchedulerSkipsTimesPassedDuringARelease(t *testing.T) {
	jobs := []Job{{"quarter", "x86_64", "*/15 * * * *"}}
	s, _, runs, ctx, log := newScheduler(t, jobs, "2026-11-21T10:01:00Z", 2, func(c *fakeClock, j Job) (string, error) {
		c.now = c.now.Add(40 * time.Minute) // longer than two periods
		return "kiln-x", nil
	})
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var got []string
	for _, r := range *runs {
		got = append(got, r.at.Format("15:04"))
	}
	// 10:15 runs until 10:55: 10:30 and 10:45 are skipped, 11:00 runs.
	if want := []string{"10:15", "11:00"}; !slices.Equal(got, want) {
		t.Errorf("releases at %v, want %v", got, want)
	}
	if !strings.Contains(log.String(), `skipped" count=2`) {
		t.Errorf("log does not report the 2 skipped times:\n%s", log)
	}
}

func TestSchedulerGoesOnAfterAFailedRelease(t *testing.T) {
	jobs := []Job{{"hourly", "x86_64", "0 * * * *"}}
	calls := 0
	s, _, runs, ctx, log := newScheduler(t, jobs, "2026-11-21T10:30:00Z", 2, func(c *fakeClock, j Job) (string, error) {
		calls++
		if calls == 1 {
			return "kiln-1", errors.New("boot test failed")
		}
		return "kiln-2", nil
	})
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(*runs) != 2 {
		t.Fatalf("%d releases, want 2 (the second after the failed first)", len(*runs))
	}
	for _, want := range []string{`level=ERROR msg="release failed" use_case=hourly arch=x86_64 run=kiln-1`, "boot test failed", `msg="release done" use_case=hourly arch=x86_64 run=kiln-2`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log has no %q:\n%s", want, log)
		}
	}
}

func TestSchedulerStoppedDuringARelease(t *testing.T) {
	jobs := []Job{{"hourly", "x86_64", "0 * * * *"}}
	s, clock, _, ctx, _ := newScheduler(t, jobs, "2026-11-21T10:30:00Z", 5, func(c *fakeClock, j Job) (string, error) {
		c.cancel() // SIGTERM arrives mid-release
		return "kiln-20261121T110000Z-abcdef", context.Canceled
	})
	err := s.Run(ctx)
	var stopped *StoppedError
	if !errors.As(err, &stopped) || stopped.RunID != "kiln-20261121T110000Z-abcdef" ||
		!strings.Contains(err.Error(), "kiln release --resume kiln-20261121T110000Z-abcdef") {
		t.Fatalf("Run = %v, want a StoppedError naming the run to resume", err)
	}
	if clock.sleeps != 1 {
		t.Errorf("%d sleeps, want 1", clock.sleeps)
	}
}

func TestSchedulerNeedsJobs(t *testing.T) {
	s := &Scheduler{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := s.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "no use case has a schedule") {
		t.Fatalf("Run with no jobs = %v", err)
	}
}

// The real clock: Run returns nil when ctx ends while it waits.
func TestSchedulerStopsWhileWaiting(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	s := &Scheduler{
		Jobs:    []Job{{"yearly", "x86_64", "0 0 1 1 *"}},
		Release: func(context.Context, Job) (string, error) { t.Error("released"); return "", nil },
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	start := time.Now()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %s to notice ctx ending", d)
	}
}

// Observe hears of every release with its due time, so the lag of a job
// that waited behind another is seen.
func TestSchedulerObserve(t *testing.T) {
	jobs := []Job{{"daily", "x86_64", "0 3 * * *"}, {"daily", "arm64", "0 3 * * *"}}
	s, _, _, ctx, _ := newScheduler(t, jobs, "2026-11-21T02:00:00Z", 1, func(c *fakeClock, j Job) (string, error) {
		c.now = c.now.Add(7 * time.Minute)
		if j.Arch == "arm64" {
			return "kiln-arm", errors.New("boot test failed")
		}
		return "kiln-x86", nil
	})
	var got []Outcome
	s.Observe = func(o Outcome) { got = append(got, o) }
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("observed %d releases, want 2: %+v", len(got), got)
	}
	due := at("2026-11-21T03:00:00Z")
	if o := got[0]; o.RunID != "kiln-x86" || o.Err != nil || !o.Due.Equal(due) || o.Lag() != 0 || o.Ended.Sub(o.Started) != 7*time.Minute {
		t.Errorf("first outcome %+v", o)
	}
	if o := got[1]; o.RunID != "kiln-arm" || o.Err == nil || o.Lag() != 7*time.Minute {
		t.Errorf("second outcome %+v (lag %s), want 7m late with its error", o, o.Lag())
	}
}
