package journal

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The queries here summarise the whole journal for a long-running reader
// (kiln serve's pages and metrics): each is one statement, so it sees one
// snapshot and costs one pass over the rows however many runs there are.

// Stamp changes whenever a run or step is recorded or changes state; a
// reader that caches what it computed from the journal recomputes it when
// the stamp differs.
func (j *Journal) Stamp(ctx context.Context) (string, error) {
	var n int
	var updated string
	err := j.db.QueryRowContext(ctx, `SELECT count(*), coalesce(max(updated), '') FROM runs`).Scan(&n, &updated)
	if err != nil {
		return "", fmt.Errorf("read journal %s: %w", j.path, err)
	}
	return fmt.Sprintf("%d/%s", n, updated), nil
}

// RunCounts counts the runs in each state.
func (j *Journal) RunCounts(ctx context.Context) (map[RunState]int, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT state, count(*) FROM runs GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("count runs in journal %s: %w", j.path, err)
	}
	defer rows.Close()
	out := map[RunState]int{}
	for rows.Next() {
		var s RunState
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("count runs in journal %s: %w", j.path, err)
		}
		out[s] = n
	}
	return out, rows.Err()
}

// PhaseSpan is one phase of one run: from its first step's start to its
// last step's end. A phase resumed after an interruption spans the pause.
type PhaseSpan struct {
	RunID   string
	UseCase string
	Arch    string
	Phase   string
	Started time.Time
	Ended   time.Time
	// Failed is true when one of the phase's steps failed.
	Failed bool
}

// Duration is how long the phase took.
func (p PhaseSpan) Duration() time.Duration { return p.Ended.Sub(p.Started) }

// PhaseSpans returns the span of every phase whose steps have all ended,
// oldest run first.
func (j *Journal) PhaseSpans(ctx context.Context) ([]PhaseSpan, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT s.run_id, r.use_case, r.arch, s.phase,
			min(s.started), max(s.ended), max(s.state = ?)
		FROM steps s JOIN runs r ON r.id = s.run_id
		WHERE s.phase != ''
		GROUP BY s.run_id, s.phase
		HAVING sum(s.ended = '') = 0
		ORDER BY r.created, s.run_id, min(s.id)`, string(StepFailed))
	if err != nil {
		return nil, fmt.Errorf("read phases from journal %s: %w", j.path, err)
	}
	defer rows.Close()
	var out []PhaseSpan
	for rows.Next() {
		var p PhaseSpan
		var started, ended string
		if err := rows.Scan(&p.RunID, &p.UseCase, &p.Arch, &p.Phase, &started, &ended, &p.Failed); err != nil {
			return nil, fmt.Errorf("read phases from journal %s: %w", j.path, err)
		}
		if p.Started, err = parseTime(started); err != nil {
			return nil, fmt.Errorf("run %s phase %s: %w", p.RunID, p.Phase, err)
		}
		if p.Ended, err = parseTime(ended); err != nil {
			return nil, fmt.Errorf("run %s phase %s: %w", p.RunID, p.Phase, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// LastStep is the newest succeeded step of one name for a use case,
// architecture and detail.
type LastStep struct {
	UseCase string
	Arch    string
	Detail  string
	RunID   string
	Ended   time.Time
}

// LastSucceeded returns, for each use case, architecture and step detail,
// the newest step named name that succeeded (the pipeline's "document"
// step, whose detail is the manifest it wrote, gives the last release
// into each channel).
func (j *Journal) LastSucceeded(ctx context.Context, name string) ([]LastStep, error) {
	// SQLite takes the other columns of a max() aggregate from the row
	// holding the maximum.
	rows, err := j.db.QueryContext(ctx, `SELECT r.use_case, r.arch, s.detail, s.run_id, max(s.ended)
		FROM steps s JOIN runs r ON r.id = s.run_id
		WHERE s.name = ? AND s.state = ?
		GROUP BY r.use_case, r.arch, s.detail
		ORDER BY r.use_case, r.arch, s.detail`, name, string(StepSucceeded))
	if err != nil {
		return nil, fmt.Errorf("read %s steps from journal %s: %w", name, j.path, err)
	}
	defer rows.Close()
	var out []LastStep
	for rows.Next() {
		var l LastStep
		var ended string
		if err := rows.Scan(&l.UseCase, &l.Arch, &l.Detail, &l.RunID, &ended); err != nil {
			return nil, fmt.Errorf("read %s steps from journal %s: %w", name, j.path, err)
		}
		if l.Ended, err = parseTime(ended); err != nil {
			return nil, fmt.Errorf("run %s: %w", l.RunID, err)
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// RunsPage returns at most limit runs, newest first, after skipping
// offset of them, and how many runs match in all. Empty useCase or state
// match any.
func (j *Journal) RunsPage(ctx context.Context, useCase string, state RunState, offset, limit int) ([]Run, int, error) {
	const where = ` WHERE (? = '' OR use_case = ?) AND (? = '' OR state = ?)`
	args := []any{useCase, useCase, string(state), string(state)}
	tx, err := j.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, 0, fmt.Errorf("list runs in journal %s: %w", j.path, err)
	}
	defer tx.Rollback()
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM runs`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("list runs in journal %s: %w", j.path, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+runColumns+` FROM runs`+where+` ORDER BY created DESC, id DESC LIMIT ? OFFSET ?`,
		append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list runs in journal %s: %w", j.path, err)
	}
	defer rows.Close()
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list runs in journal %s: %w", j.path, err)
		}
		runs = append(runs, r)
	}
	return runs, total, rows.Err()
}

// Latest returns the newest run of each use case and architecture.
func (j *Journal) Latest(ctx context.Context) ([]Run, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT `+runColumns+`, max(created) FROM runs GROUP BY use_case, arch ORDER BY use_case, arch`)
	if err != nil {
		return nil, fmt.Errorf("list runs in journal %s: %w", j.path, err)
	}
	defer rows.Close()
	var runs []Run
	for rows.Next() {
		var r Run
		var created, updated, newest string
		if err := rows.Scan(&r.ID, &r.UseCase, &r.Arch, &r.Version, &created, &updated, &r.State, &r.Phase, &r.Host, &newest); err != nil {
			return nil, fmt.Errorf("list runs in journal %s: %w", j.path, err)
		}
		if r.Created, err = parseTime(created); err != nil {
			return nil, fmt.Errorf("run %s: created: %w", r.ID, err)
		}
		if r.Updated, err = parseTime(updated); err != nil {
			return nil, fmt.Errorf("run %s: updated: %w", r.ID, err)
		}
		runs = append(runs, r)
	}
	return runs, rows.Err()
}
