// Package distribute makes kiln's releases downloadable: it places the
// files of a published image in a tree (a local directory or an S3
// bucket), describes them in a signed simplestreams index, keeps a
// history of versions under a retention, and verifies downloads against
// the index.
//
// # Layout
//
//	streams/v1/index.json                 simplestreams index (index:1.0)
//	streams/v1/index.json.minisig         its minisign signature
//	streams/v1/<channel>-<hash>.json      one products file (products:1.0) per channel,
//	                                      named by its content, and its .minisig
//	images/<use case>/<arch>/<version>/   the files of one version:
//	    <use case>-<arch>-<version>.qcow2   (ftype disk-kvm.img; with lxd.tar.xz, LXD's VM image)
//	    <use case>-<arch>-<version>.vmdk
//	    <use case>-<arch>-<version>.vhd.gz, .raw.gz   compressed, with the uncompressed sha256
//	    release-notes.md, SHA256SUMS, SHA256SUMS.minisig
//
// Products are keyed "<project>:<use case>:<arch>"; a product's versions
// are keyed by the run's start time (20261121_093012), which LXD reads as
// the image's date, and carry kiln's version as their label. Besides the
// simplestreams fields, index entries carry the sha256 and size of their
// products file, so the index signature covers the whole chain: index →
// products → items → files.
//
// # Publication order
//
// A publisher holds the tree's lock, places every file of the new
// versions (each atomically: a temporary file renamed into place, or one
// S3 PUT), reads each back and checks its sha256, checks that every file
// older versions name is still there with its size, and only then writes
// the products files, the index and their signatures. A local tree
// switches from one set of streams files to the next with one rename of a
// symlink (streams → .generations/<id>), so no reader ever sees an index
// with another index's signature or products. Files no version names any
// more are removed afterwards. A crash at any point leaves the old index
// in force and at most files nothing names, which the next publication
// reuses or removes.
package distribute
