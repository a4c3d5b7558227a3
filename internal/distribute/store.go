package distribute

import (
	"context"
	"io"
)

// Store is where a distribution tree lives: a local directory (LocalStore)
// or an S3 bucket (package s3store). Paths are slash-separated and
// relative to the tree's root, as the index names them.
type Store interface {
	// Name says where the tree is, for messages.
	Name() string
	// Lock keeps other publishers of the tree out until unlock is called.
	Lock(ctx context.Context) (unlock func(), err error)
	// Open opens a file of the tree; an absent file is an error matching
	// fs.ErrNotExist.
	Open(ctx context.Context, path string) (io.ReadCloser, error)
	// Size returns a file's size; an absent file is an error matching
	// fs.ErrNotExist.
	Size(ctx context.Context, path string) (int64, error)
	// Put makes path hold exactly what src yields, atomically: a reader
	// sees the whole old file, the whole new one, or none. It does not
	// verify; the publisher reads the file back.
	Put(ctx context.Context, path string, src Source) error
	// Streams returns the current streams files, path -> content (nil when
	// the tree has none yet).
	Streams(ctx context.Context) (map[string][]byte, error)
	// Commit makes files the tree's streams files, replacing the current
	// ones, as one change where the store allows it.
	Commit(ctx context.Context, files map[string][]byte) error
	// List returns the paths of every file under images/.
	List(ctx context.Context) ([]string, error)
	// Remove deletes files; absent ones are not an error.
	Remove(ctx context.Context, paths []string) error
}

// Source is where the content of a file comes from: exactly one of
// Bytes, File and Object.
type Source struct {
	Bytes  []byte
	File   string // a local file
	Object string // s3://bucket/key
	// Gzip compresses the content on the way into the tree.
	Gzip bool
}

// Invalidator is implemented by stores behind a CDN: after a commit the
// CDN's copies of the changed streams files are dropped.
type Invalidator interface {
	Invalidate(ctx context.Context, paths []string, token string) (string, error)
}
