package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/minisign"
)

// Distribution makes releases downloadable: a tree of files with a signed
// simplestreams index (a local directory, or an S3 bucket behind
// CloudFront on aws), `kiln serve`'s download endpoint, and the release
// checklist. Absent: nothing is published for download.
type Distribution struct {
	// Dir is the local tree `kiln serve` serves; default "<state>/dist".
	Dir string `yaml:"dir"`
	// SigningKey is a minisign secret key file (minisign -G); the
	// environment variable KILN_SIGNING_KEY, holding the file's content,
	// takes precedence, and KILN_SIGNING_KEY_PASSWORD decrypts it.
	SigningKey string `yaml:"signing_key"`
	// PublicKey is the minisign public key (the RW... line) users verify
	// downloads with; the signing key must match it.
	PublicKey string `yaml:"public_key"`
	// Keep is how many of the newest versions of each use case and
	// architecture each channel's index keeps; default 5, 0 keeps all.
	Keep int `yaml:"keep"`
	// OlderThan keeps every version younger than this, beyond Keep.
	OlderThan Duration `yaml:"older_than"`
	// GitRefs keeps versions a manifest references at git tags matching
	// this pattern (e.g. "v*"), as prune --git-refs does.
	GitRefs string `yaml:"git_refs"`
	// Changelog, when set, is the release checklist's changelog file per
	// version, e.g. "doc/changes/changes_{version}.md": a release with an
	// explicit version needs it, naming the version, date and code name,
	// and its text is published as the release notes.
	Changelog string `yaml:"changelog"`
	// ReleaseTag, when set, is the git tag a release with an explicit
	// version must be made from, e.g. "v{version}": it must point at HEAD.
	ReleaseTag string `yaml:"release_tag"`
	// RateLimit is the per-client budget of downloads, the same for `kiln
	// serve` and the aws web application firewall.
	RateLimit RateLimit `yaml:"rate_limit"`
	// AWS configures the bucket, CDN and firewall of the aws backend.
	AWS DistributionAWS `yaml:"aws"`
}

// RateLimit is a request budget per client and window, with networks that
// are never limited.
type RateLimit struct {
	Requests int      `yaml:"requests"` // default 100
	Window   Duration `yaml:"window"`   // default 5m
	// Allow lists networks (CIDR) never limited or challenged.
	Allow []string `yaml:"allow"`
	// MaxClients bounds the clients `kiln serve` remembers; default 100000.
	MaxClients int `yaml:"max_clients"`
}

// DistributionAWS configures the two CloudFormation stacks of `kiln
// distribution plan|deploy`.
type DistributionAWS struct {
	// Bucket is the private S3 bucket of the tree (created by the stack).
	Bucket string `yaml:"bucket"`
	// Region of the bucket and its stack; default the build region. The
	// firewall's stack is always in us-east-1, as CloudFront requires.
	Region string `yaml:"region"`
	// PriceClass of the CloudFront distribution; default PriceClass_100.
	PriceClass string `yaml:"price_class"`
	// BrowserCheck is what the firewall asks of clients outside the
	// allow-list on paths other than CLIPaths: captcha (default),
	// challenge or none.
	BrowserCheck string `yaml:"browser_check"`
	// CLIPaths are the path prefixes command-line clients download from,
	// which never get a CAPTCHA or challenge (curl, wget and lxc cannot
	// solve one); default [/streams/, /images/].
	CLIPaths []string `yaml:"cli_paths"`
	// NoncurrentDays is how long the bucket keeps files kiln removed from
	// the tree (retired versions of daily builds) before deleting them for
	// good; default 7.
	NoncurrentDays int `yaml:"noncurrent_days"`
}

// Serve configures `kiln serve`, the project's HTTP server.
type Serve struct {
	// Listen is the address; default 127.0.0.1:8080 (loopback: other
	// machines reach it only when told so).
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey, both or neither, make it serve HTTPS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// The firewall's limits, as AWS WAF enforces them.
var (
	wafWindows   = []time.Duration{60 * time.Second, 120 * time.Second, 300 * time.Second, 600 * time.Second}
	priceClasses = []string{"PriceClass_100", "PriceClass_200", "PriceClass_All"}
)

const (
	wafMinRate      = 10
	wafMaxRate      = 2_000_000_000
	defaultListen   = "127.0.0.1:8080"
	defaultKeep     = 5
	defaultRequests = 100
	defaultWindow   = Duration(5 * time.Minute)
	defaultClients  = 100_000
)

// applyDistributionDefaults fills in serve and distribution.
func applyDistributionDefaults(c *Config, d *decoder) {
	if c.Serve.Listen == "" {
		c.Serve.Listen = defaultListen
	}
	ds := c.Distribution
	if ds == nil {
		return
	}
	if ds.Dir == "" {
		ds.Dir = filepath.Join(c.State, "dist")
	}
	if !d.isSet("distribution.keep") {
		ds.Keep = defaultKeep
	}
	r := &ds.RateLimit
	if !d.isSet("distribution.rate_limit.requests") {
		r.Requests = defaultRequests
	}
	if !d.isSet("distribution.rate_limit.window") {
		r.Window = defaultWindow
	}
	if !d.isSet("distribution.rate_limit.max_clients") {
		r.MaxClients = defaultClients
	}
	a := &ds.AWS
	if a.Region == "" {
		a.Region = c.BuildRegion
	}
	if a.PriceClass == "" {
		a.PriceClass = "PriceClass_100"
	}
	if a.BrowserCheck == "" {
		a.BrowserCheck = "captcha"
	}
	if a.CLIPaths == nil {
		a.CLIPaths = []string{"/streams/", "/images/"}
	}
	if !d.isSet("distribution.aws.noncurrent_days") {
		a.NoncurrentDays = 7
	}
}

// checkServe checks the serve section.
func (k *checker) checkServe() {
	s := k.c.Serve
	const p = "serve"
	if host, port, err := net.SplitHostPort(s.Listen); err != nil || port == "" {
		k.errorf(p+".listen", "%q is not HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080 (empty HOST: every address)", s.Listen)
	} else if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			k.errorf(p+".listen", "host %q is not an IP address or localhost", host)
		}
	}
	if (s.TLSCert == "") != (s.TLSKey == "") {
		k.errorf(p+".tls_cert", "set tls_cert and tls_key together (a certificate and its private key, PEM)")
	}
	if s.TLSCert != "" && s.TLSKey != "" {
		k.checkFile(p+".tls_cert", s.TLSCert, "certificate", false)
		k.checkFile(p+".tls_key", s.TLSKey, "private key", false)
	}
	k.checkPrefixes(p+".trusted_proxies", s.TrustedProxies)
}

// checkPrefixes checks a list of networks in CIDR notation.
func (k *checker) checkPrefixes(path string, list []string) {
	k.checkList(path, list, func(s string) string {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Sprintf("%q is not a network in CIDR notation such as 10.0.0.0/8 or 2001:db8::/32", s)
		}
		if pfx.Masked() != pfx {
			return fmt.Sprintf("%q has bits set beyond its /%d; write %s", s, pfx.Bits(), pfx.Masked())
		}
		return ""
	})
}

// checkDistribution checks the distribution section, when there is one.
func (k *checker) checkDistribution() {
	ds := k.c.Distribution
	if ds == nil {
		return
	}
	const p = "distribution"
	if ds.PublicKey == "" {
		k.errorf(p+".public_key", "missing; give the minisign public key (the RW... line `minisign -G` writes to minisign.pub) users verify downloads with")
	} else if _, err := minisign.ParsePublicKey(ds.PublicKey); err != nil {
		k.errorf(p+".public_key", "%v", err)
	}
	if ds.SigningKey != "" && !filepath.IsLocal(ds.SigningKey) && !filepath.IsAbs(ds.SigningKey) {
		k.errorf(p+".signing_key", "%q leads outside the config's directory; give a path below it or an absolute path", ds.SigningKey)
	}
	if ds.Keep < 0 {
		k.errorf(p+".keep", "%d is negative; use 0 to keep every version", ds.Keep)
	}
	if ds.OlderThan < 0 {
		k.errorf(p+".older_than", "%s is negative", ds.OlderThan)
	}
	for _, f := range []struct{ path, v string }{{p + ".changelog", ds.Changelog}, {p + ".release_tag", ds.ReleaseTag}} {
		if f.v != "" && !strings.Contains(f.v, "{version}") {
			k.errorf(f.path, "%q lacks {version}; each version needs its own", f.v)
		}
	}
	if ds.Changelog != "" && !filepath.IsLocal(strings.ReplaceAll(ds.Changelog, "{version}", "v")) {
		k.errorf(p+".changelog", "%q must be a path below the config's directory", ds.Changelog)
	}
	if ds.ReleaseTag != "" && strings.ContainsAny(ds.ReleaseTag, " ~^:?*[\\") {
		k.errorf(p+".release_tag", "%q has characters git tags may not hold", ds.ReleaseTag)
	}
	for _, name := range k.c.UseCaseNames() {
		if v := k.c.UseCases[name].Version; v != "" && !versionSegmentRE.MatchString(v) {
			k.errorf(joinPath("use_cases", name)+".version", "version %q cannot name a directory of the download tree; use letters, digits, . _ + - (up to 64, starting with a letter or digit)", v)
		}
	}

	r := ds.RateLimit
	rp := p + ".rate_limit"
	if r.Requests < 1 {
		k.errorf(rp+".requests", "%d: give the requests a client may make per window, at least 1", r.Requests)
	}
	if r.Window <= 0 {
		k.errorf(rp+".window", "%s is not a positive duration", r.Window)
	}
	if r.MaxClients < 1 {
		k.errorf(rp+".max_clients", "%d: give how many clients the server remembers, at least 1", r.MaxClients)
	}
	k.checkPrefixes(rp+".allow", r.Allow)
	if k.c.Backend.Type == "aws" {
		k.checkDistributionAWS()
	}
}

var versionSegmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)

// checkDistributionAWS checks the settings of the aws stacks, with the
// limits AWS enforces, so that a plan never fails at deploy time over
// them.
func (k *checker) checkDistributionAWS() {
	ds := k.c.Distribution
	a := ds.AWS
	const p = "distribution.aws"
	switch {
	case a.Bucket == "":
		k.errorf(p+".bucket", "missing; name the private S3 bucket the download tree lives in (the stack creates it)")
	case !bucketRE.MatchString(a.Bucket) || strings.Contains(a.Bucket, ".."):
		k.errorf(p+".bucket", "%q is not a valid S3 bucket name (3-63 lowercase letters, digits, dots and dashes)", a.Bucket)
	case strings.Contains(a.Bucket, "."):
		k.errorf(p+".bucket", "%q has dots, which break the bucket's TLS certificate behind CloudFront; use dashes", a.Bucket)
	}
	if !ValidAWSRegion(a.Region) {
		k.errorf(p+".region", "unknown AWS region %q", a.Region)
	}
	if !slices.Contains(priceClasses, a.PriceClass) {
		k.errorf(p+".price_class", "%q; allowed: %s", a.PriceClass, strings.Join(priceClasses, ", "))
	}
	switch a.BrowserCheck {
	case "captcha", "challenge", "none":
	default:
		k.errorf(p+".browser_check", "%q; allowed: captcha, challenge, none", a.BrowserCheck)
	}
	k.checkList(p+".cli_paths", a.CLIPaths, func(s string) string {
		if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, " *?") || len(s) > 200 {
			return fmt.Sprintf("%q is not a path prefix such as /images/", s)
		}
		return ""
	})
	if a.NoncurrentDays < 1 {
		k.errorf(p+".noncurrent_days", "%d: removed files must stay at least 1 day", a.NoncurrentDays)
	}
	r := ds.RateLimit
	if r.Requests < wafMinRate || r.Requests > wafMaxRate {
		k.errorf("distribution.rate_limit.requests", "%d: AWS WAF's rate-based rules allow %d to %d requests per window", r.Requests, wafMinRate, wafMaxRate)
	}
	if r.Window > 0 && !slices.Contains(wafWindows, r.Window.Std()) {
		k.errorf("distribution.rate_limit.window", "%s: AWS WAF's rate-based rules count over 1m, 2m, 5m or 10m", r.Window)
	}
	var v4, v6 int
	for _, s := range r.Allow {
		if pfx, err := netip.ParsePrefix(s); err == nil {
			if pfx.Addr().Is4() {
				v4++
			} else {
				v6++
			}
		}
	}
	if v4 > 10000 || v6 > 10000 {
		k.errorf("distribution.rate_limit.allow", "%d IPv4 and %d IPv6 networks: an AWS WAF IP set holds at most 10000 of each", v4, v6)
	}
}
