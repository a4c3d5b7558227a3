// Package download serves a local distribution tree (package distribute)
// over HTTP: exactly the files its current index names, nothing else.
//
// No part of a request's path reaches the filesystem. The handler loads
// the index into a table of paths (each checked when the index was
// decoded) and answers only those; everything else is 404. Files are
// opened through an os.Root of the tree, so not even a symlink planted in
// the tree leads out of it.
//
// A file is served only while it is the file the index describes. The
// first request for it (or the background pass after the index loads)
// hashes it and records its inode, size and change times; a later request
// whose file differs in any of those hashes it again, and a file whose
// sha256 no longer matches is refused (500), never served with the old
// checksum. A file that changes while it is being sent has its
// connection cut. ETags are the sha256 from the index; range and
// conditional requests follow RFC 9110 through http.ServeContent.
//
// Each client has a request budget per window (package ratelimit), except
// clients on the allow-list. Range requests that resume a download the
// client already started are free until the client has fetched the file
// twice over: a download interrupted ten times costs one request, not
// eleven.
package download
