package console

import (
	"slices"
	"sync"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/schedule"
)

// keepReleases is how many scheduled releases a ScheduleRecord keeps.
const keepReleases = 100

// ScheduleRecord keeps the releases the scheduler in the server ran, for
// the schedule page and the status document. Its Observe is the
// scheduler's Observe hook.
type ScheduleRecord struct {
	channel string

	mu       sync.Mutex
	releases []report.ScheduledRelease // newest first
}

// NewScheduleRecord returns an empty record of a scheduler that publishes
// to channel.
func NewScheduleRecord(channel string) *ScheduleRecord {
	return &ScheduleRecord{channel: channel}
}

// Observe records a release the scheduler ran.
func (s *ScheduleRecord) Observe(o schedule.Outcome) {
	r := report.ScheduledRelease{
		UseCase: o.Job.UseCase, Arch: o.Job.Arch, Due: o.Due.UTC(), Started: o.Started.UTC(), Ended: o.Ended.UTC(),
		Lag: config.Duration(max(o.Lag(), 0).Round(1e6)), RunID: o.RunID,
	}
	if o.Err != nil {
		r.Error = journal.Redact(o.Err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releases = slices.Insert(s.releases, 0, r)
	if len(s.releases) > keepReleases {
		s.releases = s.releases[:keepReleases]
	}
}

// Status is the scheduler's part of the status document.
func (s *ScheduleRecord) Status() *report.SchedulerStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &report.SchedulerStatus{Channel: s.channel, Releases: slices.Clone(s.releases)}
}
