package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// migrations[i] takes the schema from version i to version i+1 (PRAGMA
// user_version). Append to it; never edit an entry that has shipped, since
// journals written by older kilns are migrated by replaying the tail.
var migrations = []string{
	// 1: runs and steps. Times are UTC RFC 3339 text with nine fraction
	// digits, so that text order is time order.
	`CREATE TABLE runs (
		id       TEXT PRIMARY KEY,
		use_case TEXT NOT NULL,
		arch     TEXT NOT NULL,
		version  TEXT NOT NULL,
		created  TEXT NOT NULL,
		updated  TEXT NOT NULL,
		state    TEXT NOT NULL,
		phase    TEXT NOT NULL,
		host     TEXT NOT NULL
	) STRICT;
	CREATE INDEX runs_created ON runs (created);
	CREATE TABLE steps (
		id       INTEGER PRIMARY KEY,
		run_id   TEXT NOT NULL REFERENCES runs (id),
		phase    TEXT NOT NULL,
		name     TEXT NOT NULL,
		region   TEXT NOT NULL,
		state    TEXT NOT NULL,
		started  TEXT NOT NULL,
		ended    TEXT NOT NULL,
		resource TEXT NOT NULL,
		detail   TEXT NOT NULL,
		error    TEXT NOT NULL
	) STRICT;
	CREATE INDEX steps_run ON steps (run_id, id);`,
	// 2: events: decisions recorded outside any run (a gate overridden by
	// hand, resources adopted into the project).
	`CREATE TABLE events (
		id      INTEGER PRIMARY KEY,
		time    TEXT NOT NULL,
		kind    TEXT NOT NULL,
		subject TEXT NOT NULL,
		detail  TEXT NOT NULL,
		host    TEXT NOT NULL
	) STRICT;`,
}

// migrate brings the schema to the latest version in one write transaction,
// so that two processes opening a new journal at once do not both create it.
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see Open): takes the write lock now
	if err != nil {
		return fmt.Errorf("begin schema transaction: %w", err)
	}
	defer tx.Rollback()

	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this kiln knows (%d); use a newer kiln", v, len(migrations))
	}
	if v == len(migrations) {
		return nil
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", i+1, err)
		}
	}
	// PRAGMA takes no parameters; the value is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit schema version %d: %w", len(migrations), err)
	}
	return nil
}

// setWAL puts the journal in WAL mode, in which readers do not block the
// writer and a commit is one append to the log. The mode is stored in the
// file, so only the first Open of a new journal changes it. SQLite refuses
// the change with SQLITE_BUSY, without waiting for the busy timeout, while
// another process uses the file (as when two processes create a journal at
// once); so retry until the busy timeout has passed.
func setWAL(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		if err == nil {
			if mode != "wal" {
				return fmt.Errorf("journal mode is %q, not wal: does the file system support shared memory (not NFS)?", mode)
			}
			return nil
		}
		if !isBusy(err) || time.Now().After(deadline) {
			return fmt.Errorf("set WAL mode: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("set WAL mode: %w", ctx.Err())
		case <-time.After(5*time.Millisecond + rand.N(20*time.Millisecond)):
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code()&0xff == sqlite3.SQLITE_BUSY || e.Code()&0xff == sqlite3.SQLITE_LOCKED)
}
