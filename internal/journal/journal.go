package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// RunState is the state of a run.
type RunState string

const (
	RunRunning   RunState = "running"
	RunSucceeded RunState = "succeeded"
	RunFailed    RunState = "failed"
)

// StepState is the state of a step.
type StepState string

const (
	StepStarted   StepState = "started"
	StepSucceeded StepState = "succeeded"
	StepFailed    StepState = "failed"
)

var (
	// ErrUnknownRun is matched by errors about a run id the journal does not
	// hold.
	ErrUnknownRun = errors.New("unknown run")
	// ErrUnknownStep is matched by errors about a step id the journal does
	// not hold.
	ErrUnknownStep = errors.New("unknown step")
)

// Run is one attempt to release one use case.
type Run struct {
	ID      string    `json:"id"`
	UseCase string    `json:"use_case"`
	Arch    string    `json:"arch"`
	Version string    `json:"version"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	State   RunState  `json:"state"`
	Phase   string    `json:"phase"` // the last phase started: build, test, replicate, publish
	Host    string    `json:"host"`  // hostname that started it
}

// Step is one recorded action of a run, typically one cloud call in one
// region. A step still "started" after its process is gone is the evidence of
// an interrupted call: what it made, if anything, is found by its tags.
type Step struct {
	ID       int64     `json:"id"`
	RunID    string    `json:"run_id"`
	Phase    string    `json:"phase"`
	Name     string    `json:"name"`
	Region   string    `json:"region"`
	State    StepState `json:"state"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended,omitzero"`  // zero while started
	Resource string    `json:"resource"`        // id of what the step made or touched, may be empty
	Detail   string    `json:"detail"`          // free text, e.g. "copy of img-... from local-a"
	Error    string    `json:"error,omitempty"` // redacted error text of a failed step
}

// Journal is an open journal file. Its methods are safe for concurrent use,
// and other processes may use the same file at the same time.
type Journal struct {
	path string
	db   *sql.DB
}

// busyTimeout is how long a write waits for another process's write to end.
const busyTimeout = 10 * time.Second

// timeLayout is RFC 3339 with a fixed nine-digit fraction: unlike
// time.RFC3339Nano it keeps text order equal to time order, and
// time.RFC3339Nano still parses it.
const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// Open opens the journal at path, creating the file and its directory if
// missing and bringing its schema up to date.
func Open(path string) (*Journal, error) {
	if path == "" {
		return nil, errors.New("open journal: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	// Durability of the intent record matters more than speed.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Writers take the lock at BEGIN: a deferred transaction that upgrades
	// from read to write fails at once with SQLITE_BUSY when another process
	// wrote meanwhile, without waiting for the busy timeout.
	q.Set("_txlock", "immediate")
	// A file: URI escapes the path, so '?' or '%' in it is not taken for
	// parameters.
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	// One connection: writes from this process queue here instead of in
	// SQLite's busy handler; other processes still wait via busy_timeout.
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: connect: %w", path, err)
	}
	ctx := context.Background()
	if err := setWAL(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open journal %s: %w", path, err)
	}
	return &Journal{path: path, db: db}, nil
}

// Close closes the journal.
func (j *Journal) Close() error {
	if err := j.db.Close(); err != nil {
		return fmt.Errorf("close journal %s: %w", j.path, err)
	}
	return nil
}

// StartRun records a new run. Its ID must be an asset id (see NewAssetID).
// Empty State means running, zero Created and Updated mean now, empty Host
// means this machine's hostname. If a run with that ID exists, StartRun leaves
// it as it is and returns nil, so that reruns may call it again.
func (j *Journal) StartRun(ctx context.Context, r Run) error {
	r, err := newRun(r)
	if err != nil {
		return err
	}
	if err := insertRun(ctx, j.db, r); err != nil {
		return fmt.Errorf("start run %s in journal %s: %w", r.ID, j.path, err)
	}
	return nil
}

// StartRunUnique is StartRun for a run whose version kiln made up from the
// time: when another run of the use case and architecture already has
// r.Version, the run gets the first of VERSION-2, VERSION-3, ... that none
// has. The choice and the insert are one transaction, so two processes
// starting in the same second do not share a version. It returns the
// version recorded (the run's own, when its ID was already recorded).
func (j *Journal) StartRunUnique(ctx context.Context, r Run) (string, error) {
	r, err := newRun(r)
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("start run %s in journal %s: %w", r.ID, j.path, err)
	}
	tx, err := j.db.BeginTx(ctx, nil) // immediate (see Open): no other writer in between
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	var recorded string
	switch err := tx.QueryRowContext(ctx, `SELECT version FROM runs WHERE id = ?`, r.ID).Scan(&recorded); {
	case err == nil:
		return recorded, nil
	case !errors.Is(err, sql.ErrNoRows):
		return fail(err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM runs
		WHERE use_case = ? AND arch = ? AND substr(version, 1, ?) = ?`,
		r.UseCase, r.Arch, len(r.Version), r.Version)
	if err != nil {
		return fail(err)
	}
	taken := map[string]bool{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fail(err)
		}
		taken[v] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fail(err)
	}
	base := r.Version
	for n := 2; taken[r.Version]; n++ {
		r.Version = fmt.Sprintf("%s-%d", base, n)
	}
	if err := insertRun(ctx, tx, r); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return r.Version, nil
}

// newRun checks r and fills in StartRun's defaults.
func newRun(r Run) (Run, error) {
	if _, err := ParseAssetID(r.ID); err != nil {
		return r, fmt.Errorf("start run: %w", err)
	}
	if r.State == "" {
		r.State = RunRunning
	}
	if err := r.State.check(); err != nil {
		return r, fmt.Errorf("start run %s: %w", r.ID, err)
	}
	if r.Created.IsZero() {
		r.Created = time.Now()
	}
	if r.Updated.IsZero() {
		r.Updated = r.Created
	}
	if r.Host == "" {
		r.Host, _ = os.Hostname() // the host is informative; unknown is fine
	}
	return r, nil
}

// insertRun inserts r unless its ID is recorded.
func insertRun(ctx context.Context, db interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}, r Run) error {
	_, err := db.ExecContext(ctx, `INSERT INTO runs
		(id, use_case, arch, version, created, updated, state, phase, host)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`,
		r.ID, r.UseCase, r.Arch, r.Version, formatTime(r.Created), formatTime(r.Updated),
		string(r.State), r.Phase, r.Host)
	return err
}

// SetRun records that run id entered phase and is in state. An empty phase
// leaves the phase as it was.
func (j *Journal) SetRun(ctx context.Context, id string, phase string, state RunState) error {
	if err := state.check(); err != nil {
		return fmt.Errorf("set run %s: %w", id, err)
	}
	res, err := j.db.ExecContext(ctx, `UPDATE runs
		SET phase = CASE WHEN ? = '' THEN phase ELSE ? END, state = ?, updated = ?
		WHERE id = ?`,
		phase, phase, string(state), formatTime(time.Now()), id)
	if err != nil {
		return fmt.Errorf("set run %s in journal %s: %w", id, j.path, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set run %s in journal %s: %w", id, j.path, err)
	} else if n == 0 {
		return fmt.Errorf("set run %q: %w", id, ErrUnknownRun)
	}
	return nil
}

// Begin records the intent of a step of run runID, before the action, and
// returns the step's id for End. The step is durable when Begin returns.
// detail is redacted like error text.
func (j *Journal) Begin(ctx context.Context, runID, phase, name, region, detail string) (int64, error) {
	if name == "" {
		return 0, fmt.Errorf("begin step of run %s: empty step name", runID)
	}
	now := formatTime(time.Now())
	var id int64
	err := j.write(ctx, func(tx *sql.Tx) error {
		// Inserting only if the run exists gives a clear ErrUnknownRun
		// instead of a foreign key failure.
		res, err := tx.ExecContext(ctx, `INSERT INTO steps
			(run_id, phase, name, region, state, started, ended, resource, detail, error)
			SELECT ?, ?, ?, ?, ?, ?, '', '', ?, ''
			WHERE EXISTS (SELECT 1 FROM runs WHERE id = ?)`,
			runID, phase, name, region, string(StepStarted), now, Redact(detail), runID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("run %q: %w", runID, ErrUnknownRun)
		}
		if id, err = res.LastInsertId(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE runs SET updated = ? WHERE id = ?`, now, runID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("begin step %s/%s/%s of run %s in journal %s: %w", phase, name, region, runID, j.path, err)
	}
	return id, nil
}

// End records the outcome of step stepID: succeeded if err is nil, else
// failed with err's text, redacted. resource names what the step made or
// touched, if anything. A step ends once; ending it again is an error.
func (j *Journal) End(ctx context.Context, stepID int64, resource string, err error) error {
	state, text := StepSucceeded, ""
	if err != nil {
		state, text = StepFailed, Redact(err.Error())
		if text == "" {
			text = fmt.Sprintf("error of type %T with no message", err)
		}
	}
	now := formatTime(time.Now())
	werr := j.write(ctx, func(tx *sql.Tx) error {
		var runID string
		var cur StepState
		err := tx.QueryRowContext(ctx, `SELECT run_id, state FROM steps WHERE id = ?`, stepID).Scan(&runID, &cur)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrUnknownStep
		} else if err != nil {
			return err
		}
		if cur != StepStarted {
			return fmt.Errorf("step already ended as %s", cur)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE steps SET state = ?, ended = ?, resource = ?, error = ? WHERE id = ?`,
			string(state), now, resource, text, stepID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE runs SET updated = ? WHERE id = ?`, now, runID)
		return err
	})
	if werr != nil {
		return fmt.Errorf("end step %d in journal %s: %w", stepID, j.path, werr)
	}
	return nil
}

// Runs returns all runs, newest first.
func (j *Journal) Runs(ctx context.Context) ([]Run, error) {
	rows, err := j.db.QueryContext(ctx, `SELECT `+runColumns+` FROM runs ORDER BY created DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list runs in journal %s: %w", j.path, err)
	}
	defer rows.Close()
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list runs in journal %s: %w", j.path, err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list runs in journal %s: %w", j.path, err)
	}
	return runs, nil
}

// Run returns run id and its steps in the order they began. An unknown id
// gives an error matching ErrUnknownRun.
func (j *Journal) Run(ctx context.Context, id string) (Run, []Step, error) {
	// A read transaction, so that the run and its steps are one snapshot.
	tx, err := j.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Run{}, nil, fmt.Errorf("read run %s from journal %s: %w", id, j.path, err)
	}
	defer tx.Rollback()
	r, err := scanRun(tx.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, nil, fmt.Errorf("run %q: %w", id, ErrUnknownRun)
	} else if err != nil {
		return Run{}, nil, fmt.Errorf("read run %s from journal %s: %w", id, j.path, err)
	}
	steps, err := readSteps(ctx, tx, id)
	if err != nil {
		return Run{}, nil, fmt.Errorf("read steps of run %s from journal %s: %w", id, j.path, err)
	}
	return r, steps, nil
}

func readSteps(ctx context.Context, tx *sql.Tx, runID string) ([]Step, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, run_id, phase, name, region, state, started, ended, resource, detail, error
		FROM steps WHERE run_id = ? ORDER BY id`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var steps []Step
	for rows.Next() {
		var s Step
		var started, ended string
		if err := rows.Scan(&s.ID, &s.RunID, &s.Phase, &s.Name, &s.Region, &s.State,
			&started, &ended, &s.Resource, &s.Detail, &s.Error); err != nil {
			return nil, err
		}
		if s.Started, err = parseTime(started); err != nil {
			return nil, fmt.Errorf("step %d: started: %w", s.ID, err)
		}
		if s.Ended, err = parseTime(ended); err != nil {
			return nil, fmt.Errorf("step %d: ended: %w", s.ID, err)
		}
		steps = append(steps, s)
	}
	return steps, rows.Err()
}

const runColumns = `id, use_case, arch, version, created, updated, state, phase, host`

func scanRun(row interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var created, updated string
	if err := row.Scan(&r.ID, &r.UseCase, &r.Arch, &r.Version, &created, &updated, &r.State, &r.Phase, &r.Host); err != nil {
		return Run{}, err
	}
	var err error
	if r.Created, err = parseTime(created); err != nil {
		return Run{}, fmt.Errorf("run %s: created: %w", r.ID, err)
	}
	if r.Updated, err = parseTime(updated); err != nil {
		return Run{}, fmt.Errorf("run %s: updated: %w", r.ID, err)
	}
	return r, nil
}

// write runs f in a write transaction and commits it.
func (j *Journal) write(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := j.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func (s RunState) check() error {
	switch s {
	case RunRunning, RunSucceeded, RunFailed:
		return nil
	}
	return fmt.Errorf("invalid run state %q: want %s, %s or %s", s, RunRunning, RunSucceeded, RunFailed)
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// parseTime parses a stored time; the empty string is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}
