// Package journal is kiln's local record of runs and their steps.
//
// A run is one attempt to release one use case, named by an asset id
// (NewAssetID). Every step of a run is written twice: Begin records the
// intent before the cloud call and End records the outcome after it, so a
// process killed in between leaves a step in state "started" as evidence of
// what it was doing. The journal is the fast path and the audit log; the cloud's
// tags remain the truth, and a later run must not trust the journal over them.
//
// The journal is a SQLite database (modernc.org/sqlite, pure Go) in WAL mode
// with a busy timeout and synchronous=FULL, so several kiln processes may
// share one file, and a process killed mid-write leaves it consistent. Error
// text is passed through Redact before it is stored: secrets never go in the
// journal.
package journal
