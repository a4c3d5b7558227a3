package report

import (
	"time"

	"github.com/kiln-images/kiln/internal/config"
)

// ServeStatus is what kiln serve is doing, GET /api/v1/status: the drift
// check whose results the pages and the other documents of the API show,
// and the scheduler when it runs in the server.
type ServeStatus struct {
	Schema  string `json:"schema"`
	Project string `json:"project"`
	Backend string `json:"backend"`
	// Actions is true when the server was started with --allow-actions.
	Actions bool        `json:"actions"`
	Check   CheckStatus `json:"check"`
	// Scheduler is present when the server runs the scheduled releases.
	Scheduler *SchedulerStatus `json:"scheduler,omitempty"`
}

// CheckStatus is the server's drift check and asset scan: the pages read
// its last results and never call the cloud themselves.
type CheckStatus struct {
	// Every is how often it runs ("0s": only at start and on demand).
	Every   config.Duration `json:"every"`
	Running bool            `json:"running"`
	// Started and Ended are those of the last check that ended; zero before
	// the first.
	Started time.Time `json:"started,omitzero"`
	Ended   time.Time `json:"ended,omitzero"`
	// Error is why the last check failed; "" when it succeeded. The
	// results shown are then those of LastSuccess.
	Error       string    `json:"error,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	Next        time.Time `json:"next,omitzero"`
}

// SchedulerStatus is the scheduler running in the server.
type SchedulerStatus struct {
	Channel string `json:"channel"` // the channel scheduled releases publish to
	// Releases are the releases it ran since the server started, newest
	// first.
	Releases []ScheduledRelease `json:"releases"`
}

// ScheduledRelease is one release the scheduler ran.
type ScheduledRelease struct {
	UseCase string          `json:"use_case"`
	Arch    string          `json:"arch"`
	Due     time.Time       `json:"due"`
	Started time.Time       `json:"started"`
	Ended   time.Time       `json:"ended"`
	Lag     config.Duration `json:"lag"` // how late it started
	RunID   string          `json:"run_id,omitempty"`
	Error   string          `json:"error,omitempty"`
}
