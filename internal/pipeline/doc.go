// Package pipeline runs the phases of a release — build, test, replicate,
// publish (which ends with the document step) — against any cloud.Backend.
//
// Every phase takes only a run's asset id and finds what earlier phases made
// by their tags, so each phase can run as its own CI job on a fresh machine.
// Every phase is idempotent: creation calls carry tokens derived from the
// asset id, step and region, and each step first looks for what an earlier
// attempt made. Killing kiln at any point and running the same command again
// finishes the run with no duplicates.
//
// The journal records each step's intent before the cloud call and its
// outcome after; it is the audit log and the fast path, never the truth.
package pipeline
