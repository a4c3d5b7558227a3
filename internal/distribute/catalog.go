package distribute

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/minisign"
)

// Fetcher reads files of a tree: from a directory, over HTTP, from S3.
type Fetcher interface {
	// Fetch returns a file's content, at most limit bytes; an absent file
	// is an error matching fs.ErrNotExist.
	Fetch(ctx context.Context, path string, limit int64) ([]byte, error)
	// Name says where the tree is, for messages.
	Name() string
}

// Catalog is a tree's index, checked: its signature (when a key is
// given), every products file against the sha256 the index gives and
// against its own signature.
type Catalog struct {
	Index    *Index
	Products map[string]*Products // index key -> products
	// Files are the streams files as fetched, path -> content.
	Files map[string][]byte
	// Signer is the key id that signed the index ("" when unchecked).
	Signer string
}

// TrustError means the chain from the signed index to a file broke: a
// signature is missing or does not verify, or a products file is not what
// the index says.
type TrustError struct {
	Path string
	Err  error
}

func (e *TrustError) Error() string {
	return fmt.Sprintf("%s: %v", e.Path, e.Err)
}

func (e *TrustError) Unwrap() error { return e.Err }

// LoadCatalog fetches and checks a tree's index and products. With key
// nil the signatures are not checked (kiln serve, which serves the tree
// kiln wrote; verification is the downloader's job).
func LoadCatalog(ctx context.Context, f Fetcher, key *minisign.PublicKey) (*Catalog, error) {
	c := &Catalog{Products: map[string]*Products{}, Files: map[string][]byte{}}
	data, err := c.fetch(ctx, f, key, IndexPath, maxStreamsFile)
	if err != nil {
		return nil, err
	}
	if c.Index, err = DecodeIndex(data); err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	if key != nil {
		c.Signer = key.ID.String()
	}
	for _, k := range slices.Sorted(maps.Keys(c.Index.Index)) {
		e := c.Index.Index[k]
		raw, err := c.fetch(ctx, f, key, e.Path, e.Size+1)
		if err != nil {
			return nil, err
		}
		if int64(len(raw)) != e.Size || sha(raw) != e.SHA256 {
			return nil, &TrustError{Path: f.Name() + "/" + e.Path, Err: fmt.Errorf("%d bytes with sha256 %s; the index says %d bytes with sha256 %s",
				len(raw), sha(raw), e.Size, e.SHA256)}
		}
		if c.Products[k], err = DecodeProducts(e.Path, raw); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	return c, nil
}

// fetch reads one streams file and, with a key, its signature, which must
// verify and name the file in its trusted comment.
func (c *Catalog) fetch(ctx context.Context, f Fetcher, key *minisign.PublicKey, path string, limit int64) ([]byte, error) {
	data, err := f.Fetch(ctx, path, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", f.Name(), path, err)
	}
	c.Files[path] = data
	if key == nil {
		return data, nil
	}
	raw, err := f.Fetch(ctx, path+SigSuffix, 16<<10)
	if err != nil {
		return nil, &TrustError{Path: f.Name() + "/" + path, Err: fmt.Errorf("signature: %w", err)}
	}
	c.Files[path+SigSuffix] = raw
	sig, err := minisign.ParseSignature(raw)
	if err != nil {
		return nil, &TrustError{Path: f.Name() + "/" + path + SigSuffix, Err: err}
	}
	if err := key.Verify(bytes.NewReader(data), sig); err != nil {
		return nil, &TrustError{Path: f.Name() + "/" + path, Err: err}
	}
	if !slices.Contains(strings.Split(sig.TrustedComment, "\t"), "file:"+path) {
		return nil, &TrustError{Path: f.Name() + "/" + path, Err: fmt.Errorf("the signature is for another file (trusted comment %q)", sig.TrustedComment)}
	}
	return data, nil
}

// Entry is one file the catalog names, with where.
type Entry struct {
	Channel string `json:"channel"`
	Located
	Size               int64  `json:"size"`
	SHA256             string `json:"sha256"`
	UncompressedSHA256 string `json:"uncompressed_sha256,omitempty"`
	Path               string `json:"path"`
	FType              string `json:"ftype"`
}

// Entries lists every item of every channel.
func (c *Catalog) Entries() []Entry {
	var out []Entry
	for _, k := range slices.Sorted(maps.Keys(c.Products)) {
		_, ch, _ := strings.Cut(k, ":")
		for _, l := range c.Products[k].Files() {
			out = append(out, Entry{Channel: ch, Located: l, Size: l.Item.Size, SHA256: l.Item.SHA256,
				UncompressedSHA256: l.Item.UncompressedSHA256, Path: l.Item.Path, FType: l.Item.FType})
		}
	}
	return out
}

// LoadCatalogRetry is LoadCatalog that tries again once, after pause,
// when the chain of trust breaks: on S3 the index and its signature are
// two objects, and a reader can fetch one of each publication between
// the two writes.
func LoadCatalogRetry(ctx context.Context, f Fetcher, key *minisign.PublicKey, pause time.Duration) (*Catalog, error) {
	c, err := LoadCatalog(ctx, f, key)
	var te *TrustError
	if err == nil || !errors.As(err, &te) {
		return c, err
	}
	select {
	case <-ctx.Done():
		return nil, err
	case <-time.After(pause):
	}
	return LoadCatalog(ctx, f, key)
}
