package config

import (
	"regexp"
	"slices"
	"strings"
)

// PublishAccount is an account other than the build account that some use
// cases, in some regions, are published into: kiln assumes Role there (STS
// AssumeRole with the standard credential chain), shares the candidate
// with it, copies into its regions and does everything after the copy
// there. backend.aws.publish_accounts[i].
type PublishAccount struct {
	// RoleARN is the role kiln assumes in the account; the account is the
	// one the ARN names, and must be in allowed_accounts.
	RoleARN string `yaml:"role_arn"`
	// ExternalID is passed to AssumeRole when the role's trust policy asks
	// for one.
	ExternalID string `yaml:"external_id"`
	// UseCases published into the account; empty means every use case.
	UseCases []string `yaml:"use_cases"`
	// Regions of the account published into; empty means every target
	// region of those use cases.
	Regions []string `yaml:"regions"`
}

var roleARNRE = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$`)

// Account returns the account id the role's ARN names, "" when the ARN is
// malformed.
func (a PublishAccount) Account() string {
	m := roleARNRE.FindStringSubmatch(a.RoleARN)
	if m == nil {
		return ""
	}
	return m[2]
}

// covers reports whether the account receives use case u in region.
func (a PublishAccount) covers(u, region string) bool {
	return (len(a.UseCases) == 0 || slices.Contains(a.UseCases, u)) &&
		(len(a.Regions) == 0 || slices.Contains(a.Regions, region))
}

// Location joins an account and a region into the name kiln's backends
// take for a region of another account: ACCOUNT/REGION. An empty account
// means the backend's own, and the location is the region.
func Location(account, region string) string {
	if account == "" {
		return region
	}
	return account + "/" + region
}

// SplitLocation returns the account and region of a location; the account
// is "" for a region of the backend's own account.
func SplitLocation(loc string) (account, region string) {
	if a, r, ok := strings.Cut(loc, "/"); ok {
		return a, r
	}
	return "", loc
}

// RegionOf returns the region of a location, as manifests name it.
func RegionOf(loc string) string {
	_, r := SplitLocation(loc)
	return r
}

// PublishAccountFor returns the account use case u is published into in
// region, other than the build account, if any.
func (c *Config) PublishAccountFor(u, region string) (PublishAccount, bool) {
	if c.Backend.Type != "aws" {
		return PublishAccount{}, false
	}
	for _, a := range c.Backend.AWS.PublishAccounts {
		if a.covers(u, region) {
			return a, true
		}
	}
	return PublishAccount{}, false
}

// Location returns where use case u's release copy in region lives: the
// region itself, or ACCOUNT/REGION when it is published into another
// account.
func (c *Config) Location(u *UseCase, region string) string {
	if a, ok := c.PublishAccountFor(u.Name, region); ok {
		return Location(a.Account(), region)
	}
	return region
}

// Locations returns every place kiln keeps images in: the configured
// regions of the build account, then the regions of other accounts that
// some use case publishes into. Inventories, drift and cleanup scan these.
func (c *Config) Locations() []string {
	out := slices.Clone(c.Regions)
	for _, name := range c.UseCaseNames() {
		u := c.UseCases[name]
		for _, loc := range c.TargetRegions(u) {
			if !slices.Contains(out, loc) {
				out = append(out, loc)
			}
		}
	}
	return out
}
