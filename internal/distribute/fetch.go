package distribute

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// DirFetcher reads a tree in a local directory. Files are opened through
// an os.Root, so nothing outside the directory is read, whatever a path
// or a symlink in the tree says.
type DirFetcher struct{ Dir string }

func (d DirFetcher) Name() string { return d.Dir }

func (d DirFetcher) Fetch(ctx context.Context, p string, limit int64) ([]byte, error) {
	if err := checkPath(strings.TrimSuffix(p, SigSuffix)); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(d.Dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(p))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readLimited(f, limit, p)
}

func readLimited(r io.Reader, limit int64, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than the %d bytes expected", name, limit)
	}
	return data, nil
}

// HTTPFetcher reads a tree over HTTP(S): `kiln serve`, a CDN, any static
// web server.
type HTTPFetcher struct {
	Base   *url.URL
	Client *http.Client
}

// NewHTTPFetcher parses the base URL of a tree.
func NewHTTPFetcher(base string, client *http.Client) (*HTTPFetcher, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("index URL %q: want http(s)://HOST[/PATH], where HOST/PATH/streams/v1/index.json is the index", base)
	}
	if client == nil {
		client = http.DefaultClient
	}
	return &HTTPFetcher{Base: u, Client: client}, nil
}

func (h *HTTPFetcher) Name() string { return h.Base.String() }

func (h *HTTPFetcher) Fetch(ctx context.Context, p string, limit int64) ([]byte, error) {
	u := h.Base.JoinPath(p)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: %s: %w", u, resp.Status, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return readLimited(resp.Body, limit, u.String())
}
