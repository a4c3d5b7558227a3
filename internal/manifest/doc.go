// Package manifest reads, checks, compares and writes kiln's channel
// manifests: one JSON file per channel mapping use case → region → entry.
//
// The shape is fixed because existing consumers already read it:
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
// Decoding is strict (duplicate keys, unknown or missing fields, wrong types
// and null are errors, reported with line and column) so that a hand edit
// that a lenient consumer would silently misread never gets published.
// Encoding is canonical (sorted keys, two-space indent, trailing newline) so
// a release is a small git diff and a revert is a rollback. Write replaces a
// file atomically. The git helpers read a manifest as it was at a tag or
// commit, for drift checks, rollbacks and history.
//
// The package imports nothing else of kiln's.
package manifest
