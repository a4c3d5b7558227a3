package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Event is a decision recorded outside any run's steps: a gate overridden
// by hand, resources adopted into the project. Events are the audit log of
// what someone chose to do against kiln's rules.
type Event struct {
	ID      int64
	Time    time.Time
	Kind    string // e.g. "override-gate", "adopt"
	Subject string // what it is about: "channel stable", "run kiln-…"
	Detail  string // free text, redacted like step details
	Host    string
}

// Record appends an event; a zero Time means now, an empty Host this
// machine's hostname. The event is durable when Record returns.
func (j *Journal) Record(ctx context.Context, e Event) error {
	if e.Kind == "" {
		return errors.New("record event: empty kind")
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.Host == "" {
		e.Host, _ = os.Hostname()
	}
	_, err := j.db.ExecContext(ctx, `INSERT INTO events (time, kind, subject, detail, host) VALUES (?, ?, ?, ?, ?)`,
		formatTime(e.Time), e.Kind, e.Subject, Redact(e.Detail), e.Host)
	if err != nil {
		return fmt.Errorf("record %s event in journal %s: %w", e.Kind, j.path, err)
	}
	return nil
}

// Events returns the recorded events of kind ("" for all), oldest first.
func (j *Journal) Events(ctx context.Context, kind string) ([]Event, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT id, time, kind, subject, detail, host FROM events
		WHERE ? = '' OR kind = ? ORDER BY id`, kind, kind)
	if err != nil {
		return nil, fmt.Errorf("read events from journal %s: %w", j.path, err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var t string
		if err := rows.Scan(&e.ID, &t, &e.Kind, &e.Subject, &e.Detail, &e.Host); err != nil {
			return nil, fmt.Errorf("read events from journal %s: %w", j.path, err)
		}
		if e.Time, err = parseTime(t); err != nil {
			return nil, fmt.Errorf("read events from journal %s: event %d: %w", j.path, e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events from journal %s: %w", j.path, err)
	}
	return out, nil
}
