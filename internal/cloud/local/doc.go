// Package local is kiln's embedded backend: a directory-backed image store
// with regions, tags, launch permissions, deprecation times and the same asset
// semantics as a cloud. It is a real backend, not a mock; images are disk
// files and copies between regions are verified by sha256.
//
// # Layout
//
// Each region is a directory, <root>/<region> or the path configured in
// config.LocalBackend.RegionPaths:
//
//	<region>/images/<id>.json          one record per image (imageRecord)
//	<region>/blobs/sha256/<hh>/<hex>   content-addressed, read-only blobs:
//	                                   the raw disk and one per export format
//	<region>/assets/<kind>/<id>.json   build work dirs and running boot tests
//	<region>/tmp/                      staging files, same filesystem as blobs
//	<region>/lock                      flock(2) lock for mutations
//
// Image ids are "img-" and 17 lower-case hex digits. An id made for a token
// is derived from the region and the token, so a rerun finds the record the
// first attempt wrote; without a token it is random. Ids, names, tags and
// formats are validated before any path is built from them.
//
// # Writes and locking
//
// Files appear in the store only by rename, and are fsynced before and
// their directories after: records are written to tmp/ first, blobs are
// staged in tmp/ (or, on import, hashed where the caller left them). So a
// reader sees a whole old file or a whole new one, never a torn one, and
// reads (ListImages, Image, ListAssets) take no lock: one directory read and
// one file read per record, which keeps listing thousands of images cheap. Every mutation of records (create,
// update, delete) and every garbage collection holds the region's exclusive
// flock; it serialises processes as well as goroutines, because each lock
// call opens the lock file anew. Long transfers of blob data run outside the
// lock, protected by the record that references them (below).
//
// Listing keeps decoded records in memory and reuses one while the file's
// inode, size and modification time are unchanged; every record write
// stamps its file with a modification time later, to the nanosecond, than
// the version it replaces, so a rewrite is never mistaken for a cached
// version even when the inode number is reused. A repeated listing costs one
// stat per record.
//
// # Consistency
//
// The invariants, which hold after a process is killed at any point:
//
//  1. An available record's blobs are present and were verified.
//  2. A blob that no pending or available record references is found and
//     removed by the next garbage collection of its region.
//
// They follow from the order of operations:
//
//   - A copy first writes a pending record that names the blob digests it
//     will need, then puts the blobs in place (reflink, hard link or
//     streamed copy, each verified against the digests), and only then,
//     under the lock, rewrites the record as available. A crash leaves a
//     pending record, which a rerun with the same token resumes, or blobs
//     the pending record references.
//   - An import hashes its files first, then under the lock renames them
//     into the blob store and writes the available record. A crash between
//     the two leaves only unreferenced blobs (and the caller, whose files
//     are gone, builds again).
//   - Garbage collection holds the lock while it reads every record and
//     removes the blobs none of the pending or available ones reference.
//     Records change only under the same lock, and a blob can appear
//     outside the lock only after its pending record exists, so no blob
//     that a record needs is ever removed. An unreadable record stops the
//     collection instead of freeing blobs it might reference.
//   - DeleteImage removes the record first, then collects; a crash in
//     between leaves unreferenced blobs, which the next collection finds.
//   - Staging files in tmp/ are removed by garbage collection once their
//     inode has not changed for an hour; writing or linking a file changes
//     it, so live transfers are far younger.
//
// A copy whose source blob does not match its digest is marked failed and
// collection removes any bad blob it left; a later copy with the same token
// retries it.
//
// # Sharing blocks
//
// A copy to a region on the same filesystem first tries FICLONE (a reflink
// sharing extents) and falls back to a hard link of the immutable blob; on
// another filesystem it streams the bytes, hashing them on the way and
// skipping runs of zeros so sparse disks stay sparse. A linked blob is the
// source inode itself: it is verified once, not once per region. Whoever
// hashes a blob (the import, a copy) records the digest on its inode, in
// the extended attribute user.kiln.sha256 together with the inode number,
// size and modification time it holds for; a later process trusts the
// record while those are unchanged and hashes the blob again otherwise.
package local
