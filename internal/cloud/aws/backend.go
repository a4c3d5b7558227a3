package aws

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// Backend is the AWS backend. It is safe for concurrent use; one value
// serves every configured region.
type Backend struct {
	cfg     config.AWSBackend
	regions []string
	opts    options
	log     *slog.Logger

	clients *clientSet

	mu      sync.Mutex
	account string // cached caller account, "" until known
	allowed bool   // account is in cfg.AllowedAccounts (or no list is set)
	// unblocked is when each region last answered that image block
	// public access is off (see publicAccessBlockedRecently).
	unblocked map[string]time.Time
	// bucketRegions caches where buckets live (GetBucketLocation).
	bucketRegions map[string]string
	// made holds region/id of images this backend made whose launch
	// permissions it has not changed since (publish.go).
	made map[string]bool
	// uploads holds the completed snapshots builds in this process
	// uploaded, by their token (upload.go).
	uploads map[string]string
}

var (
	_ cloud.Backend             = (*Backend)(nil)
	_ cloud.PublicAccessChecker = (*Backend)(nil)
	_ cloud.Parameters          = (*Backend)(nil)
	_ cloud.Exporter            = (*Backend)(nil)
)

// Option changes how New builds a Backend.
type Option func(*options)

type options struct {
	disks        DiskBuilder
	stateDir     string
	logger       *slog.Logger
	httpClient   *http.Client
	maxAttempts  int
	maxBackoff   time.Duration
	pollInterval time.Duration
	pollMax      time.Duration
	stableReads  int
	confirmPause time.Duration // 0: a fifth of pollInterval
}

// Defaults: generous retries for a batch tool that runs for an hour and
// must ride out throttling bursts; waits that start every few seconds and
// back off to half a minute.
const (
	defaultMaxAttempts  = 10
	defaultMaxBackoff   = 20 * time.Second
	defaultPollInterval = 5 * time.Second
	defaultPollMax      = 30 * time.Second
	defaultStableReads  = 3
	defaultBuildTimeout = 60 * time.Minute
	defaultCopyTimeout  = 90 * time.Minute
	defaultTestTimeout  = 20 * time.Minute
)

// WithDiskBuilder sets the builder of disks for builds with method upload
// (kiln passes the local backend's); without one such builds fail unless
// they give build.disk.
func WithDiskBuilder(d DiskBuilder) Option { return func(o *options) { o.disks = d } }

// WithStateDir sets kiln's local state directory, where builds with
// method upload make their disks: the backend lists and removes those work
// directories as assets of kind build.
func WithStateDir(dir string) Option { return func(o *options) { o.stateDir = dir } }

// WithLogger sets the logger for progress and retries (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHTTPClient sets the HTTP client of every AWS client, e.g. one that
// routes through a test proxy.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithRetryMaxAttempts sets how many times the SDK tries one request
// (default 10).
func WithRetryMaxAttempts(n int) Option { return func(o *options) { o.maxAttempts = n } }

// WithRetryMaxBackoff caps the SDK's pause between attempts (default 20s).
func WithRetryMaxBackoff(d time.Duration) Option { return func(o *options) { o.maxBackoff = d } }

// WithPollInterval sets the first and the largest pause of every wait
// (image available, instance stopped, stack complete, console marker).
// Tests use milliseconds so they never sleep for real minutes.
func WithPollInterval(first, max time.Duration) Option {
	return func(o *options) { o.pollInterval, o.pollMax = first, max }
}

// WithStableReads sets how many consecutive "available" reads WaitAvailable
// needs (default 3): a single read can come from a replica that is ahead of
// the one the next call reaches.
func WithStableReads(n int) Option { return func(o *options) { o.stableReads = n } }

// WithConfirmPause sets the pause before each read that confirms an
// available image (default: a fifth of the poll interval).
func WithConfirmPause(d time.Duration) Option { return func(o *options) { o.confirmPause = d } }

// New returns a backend acting in regions with cfg. It loads the SDK's
// configuration (credential chain, cfg.Profile, endpoint overrides) but makes
// no request; clients for a region are made when first used.
func New(ctx context.Context, cfg config.AWSBackend, regions []string, opts ...Option) (*Backend, error) {
	o := options{
		maxAttempts:  defaultMaxAttempts,
		maxBackoff:   defaultMaxBackoff,
		pollInterval: defaultPollInterval,
		pollMax:      defaultPollMax,
		stableReads:  defaultStableReads,
	}
	if cfg.RetryMaxBackoff > 0 {
		o.maxBackoff = cfg.RetryMaxBackoff.Std()
	}
	if cfg.PollInterval > 0 {
		o.pollInterval, o.pollMax = cfg.PollInterval.Std(), 6*cfg.PollInterval.Std()
	}
	for _, fn := range opts {
		fn(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.maxAttempts < 1 {
		return nil, fmt.Errorf("aws backend: retry max attempts %d: must be at least 1", o.maxAttempts)
	}
	if o.pollInterval <= 0 || o.pollMax < o.pollInterval {
		return nil, fmt.Errorf("aws backend: poll interval %s..%s: must be positive and first <= max", o.pollInterval, o.pollMax)
	}
	if o.stableReads < 1 {
		o.stableReads = 1
	}
	for _, r := range regions {
		if !validRegion(r) {
			return nil, fmt.Errorf("aws backend: region %q: want a region name such as us-east-1: %w", r, cloud.ErrInvalid)
		}
	}
	cs, err := newClientSet(ctx, cfg, regions, o)
	if err != nil {
		return nil, err
	}
	return &Backend{
		cfg:           cfg,
		regions:       slices.Clone(regions),
		opts:          o,
		log:           o.logger,
		clients:       cs,
		unblocked:     map[string]time.Time{},
		bucketRegions: map[string]string{},
		made:          map[string]bool{},
		uploads:       map[string]string{},
	}, nil
}

// Name returns "aws".
func (b *Backend) Name() string { return "aws" }

// Account returns the account the credentials act as (STS
// GetCallerIdentity), cached after the first success.
func (b *Backend) Account(ctx context.Context) (string, error) {
	b.mu.Lock()
	acct := b.account
	b.mu.Unlock()
	if acct != "" {
		return acct, nil
	}
	out, err := b.clients.sts().GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("get caller identity: %w", classify(err))
	}
	if out.Account == nil || *out.Account == "" {
		return "", fmt.Errorf("get caller identity: no account in the answer")
	}
	acct = *out.Account
	b.mu.Lock()
	b.account = acct
	b.allowed = len(b.cfg.AllowedAccounts) == 0 || slices.Contains(b.cfg.AllowedAccounts, acct)
	b.mu.Unlock()
	return acct, nil
}

// CheckAccount returns an error matching cloud.ErrAccessDenied when the
// caller's account is not in backend.aws.allowed_accounts. Every method that
// changes something calls it first; the answer is cached, so it costs one
// STS call per Backend.
func (b *Backend) CheckAccount(ctx context.Context) error {
	acct, err := b.Account(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	ok := b.allowed
	b.mu.Unlock()
	if !ok {
		return cloud.Mark(fmt.Errorf("credentials act as account %s, which is not in backend.aws.allowed_accounts [%s]; refusing to change anything",
			acct, strings.Join(b.cfg.AllowedAccounts, ", ")), cloud.ErrAccessDenied)
	}
	return nil
}

// checkLocation is CheckAccount for a change at a location: the build
// account must be allowed, and for a region of another account, the
// credentials of its role must act as that account, which must be allowed
// too. The answer is cached per account.
func (b *Backend) checkLocation(ctx context.Context, loc string) error {
	if err := b.CheckAccount(ctx); err != nil {
		return err
	}
	acct, _ := config.SplitLocation(loc)
	if acct == "" {
		return nil
	}
	cs, err := b.clients.account(acct)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	seen := cs.identity
	cs.mu.Unlock()
	if seen == "" {
		out, err := cs.sts().GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return cloud.Mark(fmt.Errorf("act in account %s (assume role %s): %w", acct, b.clients.roles[acct].RoleARN, classify(err)), cloud.ErrAccessDenied)
		}
		seen = aws.ToString(out.Account)
		cs.mu.Lock()
		cs.identity = seen
		cs.mu.Unlock()
	}
	if seen != acct || !slices.Contains(b.cfg.AllowedAccounts, seen) {
		return cloud.Mark(fmt.Errorf("the role %s acts as account %s, not %s, or that account is not in backend.aws.allowed_accounts [%s]; refusing to change anything",
			b.clients.roles[acct].RoleARN, seen, acct, strings.Join(b.cfg.AllowedAccounts, ", ")), cloud.ErrAccessDenied)
	}
	return nil
}

// validRegion accepts AWS region names (letters, digits, dashes).
func validRegion(r string) bool {
	if r == "" || len(r) > 64 {
		return false
	}
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (b *Backend) buildTimeout() time.Duration {
	if b.cfg.BuildTimeout > 0 {
		return time.Duration(b.cfg.BuildTimeout)
	}
	return defaultBuildTimeout
}

func (b *Backend) copyTimeout() time.Duration {
	if b.cfg.CopyTimeout > 0 {
		return time.Duration(b.cfg.CopyTimeout)
	}
	return defaultCopyTimeout
}
