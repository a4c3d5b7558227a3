// Package output renders kiln's results for people and for scripts: aligned
// tables, versioned JSON documents, and progress of long steps (live lines on
// a terminal, plain log lines elsewhere).
package output
