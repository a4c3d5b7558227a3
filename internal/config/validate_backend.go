package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

var (
	instanceTypeRE = regexp.MustCompile(`^[a-z0-9-]+\.[a-z0-9-]+$`)
	subnetRE       = regexp.MustCompile(`^subnet-([0-9a-f]{8}|[0-9a-f]{17})$`)
	bucketRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	ssmNameChars   = regexp.MustCompile(`^[A-Za-z0-9_./-]*$`)
)

// checkLocal checks backend.local; only when the backend is local.
func (k *checker) checkLocal() {
	l := k.c.Backend.Local
	const p = "backend.local"
	if !accountRE.MatchString(l.AccountID) {
		k.errorf(p+".account_id", "account id %q is not 12 digits", l.AccountID)
	}
	switch l.Accel {
	case "auto", "kvm", "tcg":
	default:
		k.errorf(p+".accel", "unknown accelerator %q; allowed: auto, kvm, tcg", l.Accel)
	}
	if !validMirror(l.Mirror) {
		k.errorf(p+".mirror", "mirror %q is not an http, https or file URL such as %s", l.Mirror, defaultMirror)
	}
	if l.Root != "" {
		if err := CheckStoreDir(k.c.Resolve(l.Root)); err != nil {
			k.errorf(p+".root", "%v", err)
		} else {
			for _, r := range k.c.Regions {
				if _, elsewhere := l.RegionPaths[r]; elsewhere || !ValidLocalRegion(r) {
					continue
				}
				if err := CheckRegionDir(filepath.Join(k.c.Resolve(l.Root), r)); err != nil {
					k.errorf(p+".root", "region %s: %v", r, err)
				}
			}
		}
	}
	dirs := map[string]string{} // resolved directory → region
	for _, r := range sortedKeys(l.RegionPaths) {
		rp := joinPath(p+".region_paths", r)
		k.checkRegionRef(rp, r, true)
		dir := l.RegionPaths[r]
		if dir == "" {
			k.errorf(rp, "missing; give the directory that holds region %q", r)
			continue
		}
		abs := k.c.Resolve(dir)
		if other, dup := dirs[abs]; dup {
			k.errorf(rp, "regions %s and %s share the directory %s; each region needs its own", other, r, abs)
		}
		if err := CheckRegionDir(abs); err != nil {
			k.errorf(rp, "%v", err)
		}
		dirs[abs] = r
	}
	k.checkList(p+".block_public_access", l.BlockPublicAccess, func(r string) string {
		if !slices.Contains(k.c.Regions, r) {
			return fmt.Sprintf("region %q is not among regions %s", r, k.regionList())
		}
		return ""
	})
	if l.BootTimeout <= 0 {
		k.errorf(p+".boot_timeout", "%s is not a positive duration; use e.g. 10m", l.BootTimeout)
	}
}

// checkAWS checks backend.aws; only when the backend is aws.
func (k *checker) checkAWS() {
	a := k.c.Backend.AWS
	const p = "backend.aws"
	if len(a.AllowedAccounts) == 0 {
		k.errorf(p+".allowed_accounts", "missing; list the 12-digit ids of the accounts kiln may act in, e.g. [123456789012]")
	}
	k.checkList(p+".allowed_accounts", a.AllowedAccounts, func(id string) string {
		if !accountRE.MatchString(id) {
			return fmt.Sprintf("account %q is not a 12-digit AWS account id", id)
		}
		return ""
	})
	if !instanceTypeRE.MatchString(a.InstanceType) {
		k.errorf(p+".instance_type", "%q is not an EC2 instance type such as t3.micro", a.InstanceType)
	}
	if a.SubnetID != "" && !subnetRE.MatchString(a.SubnetID) {
		k.errorf(p+".subnet_id", "%q is not a subnet id such as subnet-0123456789abcdef0", a.SubnetID)
	}
	if a.CopyConcurrency < 1 || a.CopyConcurrency > 100 {
		k.errorf(p+".copy_concurrency", "%d is out of range; allowed: 1 to 100", a.CopyConcurrency)
	}
	for _, r := range sortedKeys(a.KMSKeys) {
		kp := joinPath(p+".kms_keys", r)
		k.checkRegionRef(kp, r, true)
		if a.KMSKeys[r] == "" {
			k.errorf(kp, "missing; give the KMS key id or ARN for region %q", r)
		}
	}
	if a.SSMParameters != "" {
		k.checkSSMParameters(p+".ssm_parameters", a.SSMParameters)
	}
	if a.ExportBucket != "" && !bucketRE.MatchString(a.ExportBucket) {
		k.errorf(p+".export_bucket", "%q is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and dashes)", a.ExportBucket)
	}
	if a.ExportBucket == "" {
		for _, name := range k.c.UseCaseNames() {
			if len(k.c.UseCases[name].Exports) > 0 {
				k.errorf(p+".export_bucket", "missing; use case %q has exports, which the aws backend writes to an S3 bucket", name)
				break
			}
		}
	}
	k.checkPublishAccounts()
	for _, t := range []struct {
		field string
		d     Duration
	}{{"build_timeout", a.BuildTimeout}, {"copy_timeout", a.CopyTimeout}, {"test_timeout", a.TestTimeout}, {"poll_interval", a.PollInterval}, {"retry_max_backoff", a.RetryMaxBackoff}} {
		if t.d <= 0 {
			k.errorf(p+"."+t.field, "%s is not a positive duration; use e.g. 60m", t.d)
		}
	}
}

// checkSSMParameters checks the naming rule of the channel parameters: a
// path with placeholders that keeps each channel, use case and architecture
// apart.
func (k *checker) checkSSMParameters(p, rule string) {
	if !strings.HasPrefix(rule, "/") {
		k.errorf(p, "%q must start with \"/\", e.g. /kiln/{channel}/{use_case}", rule)
		return
	}
	t, err := parseTemplate(rule, ssmPlaceholders)
	if err != nil {
		k.errorf(p, "%v", err)
		return
	}
	if !ssmNameChars.MatchString(t.literal) {
		k.errorf(p, "%q has characters parameter names may not hold; allowed: letters, digits and _ . - /", rule)
		return
	}
	if !t.uses["channel"] && len(k.c.Channels) > 1 {
		k.errorf(p, "%q lacks {channel}; with several channels, they would write the same parameter", rule)
	}
	if !t.uses["use_case"] && len(k.c.UseCases) > 1 {
		k.errorf(p, "%q lacks {use_case}; with several use cases, they would write the same parameter", rule)
	}
	if !t.uses["arch"] {
		for _, name := range k.c.UseCaseNames() {
			if len(k.c.UseCases[name].Architectures) > 1 {
				k.errorf(p, "%q lacks {arch}; use case %q has several architectures, which would write the same parameter", rule, name)
				break
			}
		}
	}
}

// validMirror reports whether s is a URL mmdebstrap can fetch packages from.
func validMirror(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https":
		return u.Host != ""
	case "file":
		return u.Path != ""
	}
	return false
}
