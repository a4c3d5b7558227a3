// Package manifest reads, checks, compares and writes kiln's channel
// manifests: one JSON file per channel mapping use case → region → entry.
//
// Kiln's own format, the default, is the shape existing consumers read:
//
//	{
//	  "aws-linux-ephemeral": {
//	    "us-east-1": {
//	      "architecture": "x86_64",
//	      "deprecation_time": "",
//	      "id": "ami-048b8191da9c5e202",
//	      "name": "ubuntu",
//	      "public": true
//	    }
//	  }
//	}
//
// A channel may instead declare its consumer's format (Format): the key
// template, the architecture names, the fields in file order each bound to
// what it holds (image id, name, region, architecture, public, deprecation
// time in a layout, a use-case attribute, the key, a constant) and the
// encoding (indent, escaping, trailing newline). Bound to a project's use
// cases it becomes a Layout, which reads, checks, writes and diffs files in
// that format byte for byte as the consumer's tooling did. In memory every
// manifest uses kiln's keys and kiln's terms, so the rest of kiln is the
// same whatever the file looks like, and a diff across a change of format
// shows only what changed.
//
// Decoding is strict (duplicate keys, unknown or missing fields, wrong types
// and null are errors, reported with line and column) so that a hand edit
// that a lenient consumer would silently misread never gets published.
// Encoding is canonical (sorted keys, two-space indent, trailing newline) so
// a release is a small git diff and a revert is a rollback. Write replaces a
// file atomically. The git helpers read a manifest as it was at a tag or
// commit, for drift checks, rollbacks and history.
//
// The package imports nothing else of kiln's; consumertest runs the
// consumers' own programs (Terraform, Python's json module) for tests.
package manifest
