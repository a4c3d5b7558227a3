package local

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// DefaultAccount is the account the backend acts as when none is configured.
const DefaultAccount = "000000000000"

var (
	_ cloud.Backend             = (*Backend)(nil)
	_ cloud.PublicAccessChecker = (*Backend)(nil)
)

// Backend is the local image store. It is safe for concurrent use by
// goroutines and by several processes sharing the same directories.
type Backend struct {
	cfg     config.LocalBackend
	account string
	regions map[string]*region
	names   []string // configured regions, sorted, for error messages
	blocked map[string]bool
	now     func() time.Time
	log     *slog.Logger
	digests *digestCache
	// waitTimeout bounds WaitImage.
	waitTimeout time.Duration
}

// An Option changes how New sets up a Backend.
type Option func(*Backend)

// WithClock makes the backend read the time from now (creation times,
// garbage collection of staging files).
func WithClock(now func() time.Time) Option {
	return func(b *Backend) { b.now = now }
}

// WithLogger makes the backend log to l; by default it logs nothing.
func WithLogger(l *slog.Logger) Option {
	return func(b *Backend) { b.log = l }
}

// New returns a backend serving regions, each stored in root/<region> or in
// cfg.RegionPaths[region]. root and every region path must be absolute: the
// caller resolves them against the project directory. Nothing is created on
// disk until the first write to a region.
func New(cfg config.LocalBackend, root string, regions []string, opts ...Option) (*Backend, error) {
	b := &Backend{
		cfg:     cfg,
		account: cfg.AccountID,
		regions: make(map[string]*region),
		blocked: make(map[string]bool),
		now:     time.Now,
		log:     slog.New(slog.DiscardHandler),
		digests: newDigestCache(),

		waitTimeout: DefaultWaitTimeout,
	}
	for _, o := range opts {
		o(b)
	}
	if b.account == "" {
		b.account = DefaultAccount
	}
	if !isAccount(b.account) {
		return nil, invalidf("local backend: account_id %q: want 12 digits", b.account)
	}
	if !filepath.IsAbs(root) {
		return nil, invalidf("local backend: store root %q is not an absolute path", root)
	}
	if err := config.CheckStoreDir(root); err != nil {
		return nil, invalidf("local backend: store root: %v", err)
	}
	if len(regions) == 0 {
		return nil, invalidf("local backend: no regions configured")
	}
	dirs := make(map[string]string) // directory -> region, to refuse sharing
	for _, name := range regions {
		if _, dup := b.regions[name]; dup {
			continue
		}
		if err := checkRegionName(name); err != nil {
			return nil, fmt.Errorf("local backend: %w", err)
		}
		dir := filepath.Join(root, name)
		if p, ok := cfg.RegionPaths[name]; ok {
			if !filepath.IsAbs(p) {
				return nil, invalidf("local backend: region_paths[%s]: %q is not an absolute path", name, p)
			}
			dir = filepath.Clean(p)
		}
		if other, ok := dirs[dir]; ok {
			return nil, invalidf("local backend: regions %s and %s both use directory %s", other, name, dir)
		}
		if err := config.CheckRegionDir(dir); err != nil {
			return nil, invalidf("local backend: region %s: %v", name, err)
		}
		dirs[dir] = name
		b.regions[name] = &region{name: name, dir: dir, cache: newRecordCache()}
		b.names = append(b.names, name)
	}
	slices.Sort(b.names)
	for _, name := range cfg.BlockPublicAccess {
		b.blocked[name] = true
	}
	return b, nil
}

// Name returns "local".
func (b *Backend) Name() string { return "local" }

// Account returns the configured account id.
func (b *Backend) Account(ctx context.Context) (string, error) { return b.account, nil }

// Regions returns the configured regions, sorted.
func (b *Backend) Regions() []string { return slices.Clone(b.names) }

// PublicAccessBlocked reports whether region is listed in BlockPublicAccess.
func (b *Backend) PublicAccessBlocked(ctx context.Context, region string) (bool, error) {
	if _, err := b.region(region); err != nil {
		return false, fmt.Errorf("local: %w", err)
	}
	return b.blocked[region], nil
}

// region returns the configured region called name, or an error matching
// cloud.ErrInvalid that lists the configured ones.
func (b *Backend) region(name string) (*region, error) {
	r, ok := b.regions[name]
	if !ok {
		return nil, invalidf("region %q is not configured (configured: %s)", name, strings.Join(b.names, ", "))
	}
	return r, nil
}

// RegionDir returns the directory holding region.
func (b *Backend) RegionDir(region string) (string, error) {
	r, err := b.region(region)
	if err != nil {
		return "", fmt.Errorf("local: %w", err)
	}
	return r.dir, nil
}

// inStore reports whether path lies inside one of the region directories.
func (b *Backend) inStore(path string) bool {
	for _, r := range b.regions {
		if within(path, r.dir) {
			return true
		}
	}
	return false
}

// overlapsStore reports whether removing path would remove anything of a
// region: path is inside a region directory or holds one.
func (b *Backend) overlapsStore(path string) bool {
	for _, r := range b.regions {
		if within(path, r.dir) || within(r.dir, path) {
			return true
		}
	}
	return false
}

// within reports whether path is dir or lies below it.
func within(path, dir string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(dir, abs)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// statDev returns the device of path, for deciding whether a rename or link
// can work.
func statDev(path string) (uint64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return devOf(fi), nil
}
