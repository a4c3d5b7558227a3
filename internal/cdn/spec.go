package cdn

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// FirewallRegion is where a web ACL for CloudFront must live.
const FirewallRegion = "us-east-1"

// Tag values of the stacks and what they make.
const (
	TagComponent = "kiln:component"
	Component    = "downloads"
)

// Spec is what the two stacks are made from.
type Spec struct {
	Project      string
	Bucket       string
	Region       string // the bucket's
	PriceClass   string
	Requests     int           // per window and client address
	Window       time.Duration // 60, 120, 300 or 600 s
	AllowV4      []string      // CIDR
	AllowV6      []string
	BrowserCheck string   // captcha, challenge, none
	CLIPaths     []string // never a browser check
	// NoncurrentDays keeps files kiln removed for this many days.
	NoncurrentDays int
	Tags           map[string]string // on the stacks and every taggable resource
}

// SpecOf returns the spec of a project's distribution.aws settings.
func SpecOf(cfg *config.Config) (Spec, error) {
	ds := cfg.Distribution
	if ds == nil {
		return Spec{}, fmt.Errorf("%s has no distribution section", cfg.Path)
	}
	s := Spec{
		Project: cfg.Project, Bucket: ds.AWS.Bucket, Region: ds.AWS.Region, PriceClass: ds.AWS.PriceClass,
		Requests: ds.RateLimit.Requests, Window: ds.RateLimit.Window.Std(),
		BrowserCheck: ds.AWS.BrowserCheck, CLIPaths: slices.Clone(ds.AWS.CLIPaths), NoncurrentDays: ds.AWS.NoncurrentDays,
		Tags: cfg.Tags(),
	}
	maps.Copy(s.Tags, map[string]string{
		cloud.TagManaged: "true", cloud.TagProject: cfg.Project, cloud.TagRetain: "true", TagComponent: Component,
	})
	for _, a := range ds.RateLimit.Allow {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			return s, fmt.Errorf("distribution.rate_limit.allow: %w", err)
		}
		if p.Addr().Is4() {
			s.AllowV4 = append(s.AllowV4, p.Masked().String())
		} else {
			s.AllowV6 = append(s.AllowV6, p.Masked().String())
		}
	}
	return s, s.Check()
}

// Check refuses what AWS would refuse at deploy time, as AWS says it.
func (s Spec) Check() error {
	var probs []string
	if s.Requests < 10 || s.Requests > 2_000_000_000 {
		probs = append(probs, fmt.Sprintf("rate limit %d: AWS WAF allows 10 to 2000000000 requests per window", s.Requests))
	}
	if !slices.Contains([]time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}, s.Window) {
		probs = append(probs, fmt.Sprintf("window %s: AWS WAF counts over 60, 120, 300 or 600 seconds", s.Window))
	}
	if len(s.AllowV4) > 10000 || len(s.AllowV6) > 10000 {
		probs = append(probs, "allow-list: an IP set holds at most 10000 addresses of each family")
	}
	switch s.BrowserCheck {
	case "captcha", "challenge", "none":
	default:
		probs = append(probs, fmt.Sprintf("browser check %q: want captcha, challenge or none", s.BrowserCheck))
	}
	if s.BrowserCheck != "none" && len(s.CLIPaths) == 0 {
		probs = append(probs, "a browser check with no command-line paths would block curl, wget and lxc everywhere")
	}
	if s.Bucket == "" || s.Project == "" || s.Region == "" {
		probs = append(probs, "bucket, project and region are required")
	}
	if len(probs) > 0 {
		return fmt.Errorf("distribution: %s", strings.Join(probs, "; "))
	}
	return nil
}

// Stack names.
func (s Spec) FirewallStack() string { return s.Project + "-downloads-firewall" }
func (s Spec) SiteStack() string     { return s.Project + "-downloads" }

// WebACLName is the web ACL's name, by which kiln finds it.
func (s Spec) WebACLName() string { return s.Project + "-downloads" }
