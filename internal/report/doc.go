// Package report holds the JSON documents kiln prints with -o json, and the
// registry that names each one's schema (kiln.<command>/v1).
//
// A report type lives here when a command composes it from the results of
// several packages, and in the package that produces it otherwise (the
// pipeline's phase reports, drift's findings); either way it is registered
// here once, so the CLI and an HTTP API print the same document, and the
// JSON Schemas in docs/schemas are generated from the Go types:
//
//	go generate ./internal/report
//
// A test fails when a schema file is out of date.
package report

//go:generate go run ./schemagen ../../docs/schemas
