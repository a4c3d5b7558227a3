package config

import (
	"strings"
	"testing"
	"time"
)

// testPublicKey is a minisign public key (of no secret key anyone keeps).
const testPublicKey = "RWS17BIm7EKy4sKAYOMw1qMbQzQiBi30ELy5nuCjUT/TsjGZo6r4+p6H"

// The distribution and serve cases join the validation cases (and seed
// the fuzzer with them).
func init() { validationCases = append(validationCases, distributionCases...) }

var distributionCases = []errorCase{
	{"distribution without key", localBase + "distribution: {dir: dist}\n", []string{
		"kiln.yaml:7:1: distribution.public_key: missing; give the minisign public key (the RW... line `minisign -G` writes to minisign.pub) users verify downloads with"}},
	{"distribution bad key", localBase + "distribution: {public_key: RWQx}\n", []string{
		"kiln.yaml:7:28: distribution.public_key: minisign public key: want 56 base64 characters starting with RW (as `minisign -G` writes to minisign.pub)"}},
	{"distribution numbers", localBase + "distribution: {public_key: " + testPublicKey + ", keep: -1, older_than: -1d, rate_limit: {requests: 0, window: 0s, max_clients: 0, allow: [10.0.0.1/8, x]}}\n", []string{
		"kiln.yaml:7:92: distribution.keep: -1 is negative; use 0 to keep every version",
		"kiln.yaml:7:108: distribution.older_than: -1d is negative",
		"kiln.yaml:7:136: distribution.rate_limit.requests: 0: give the requests a client may make per window, at least 1",
		"kiln.yaml:7:147: distribution.rate_limit.window: 0s is not a positive duration",
		"kiln.yaml:7:164: distribution.rate_limit.max_clients: 0: give how many clients the server remembers, at least 1",
		`kiln.yaml:7:175: distribution.rate_limit.allow[0]: "10.0.0.1/8" has bits set beyond its /8; write 10.0.0.0/8`,
		`kiln.yaml:7:187: distribution.rate_limit.allow[1]: "x" is not a network in CIDR notation such as 10.0.0.0/8 or 2001:db8::/32`}},
	{"distribution checklist", localBase + "distribution: {public_key: " + testPublicKey + ", changelog: CHANGES.md, release_tag: v*}\n", []string{
		`kiln.yaml:7:97: distribution.changelog: "CHANGES.md" lacks {version}; each version needs its own`,
		`kiln.yaml:7:122: distribution.release_tag: "v*" lacks {version}; each version needs its own`,
		`kiln.yaml:7:122: distribution.release_tag: "v*" has characters git tags may not hold`}},
	{"distribution version", localBase + "    version: 1 0\ndistribution: {public_key: " + testPublicKey + "}\n", []string{
		`kiln.yaml:7:14: use_cases.u.version: version "1 0" cannot name a directory of the download tree; use letters, digits, . _ + - (up to 64, starting with a letter or digit)`}},
	{"distribution aws limits", awsBase + "distribution: {public_key: " + testPublicKey + ", rate_limit: {requests: 5, window: 7m}, aws: {bucket: My.Bucket, price_class: cheap, browser_check: puzzle, cli_paths: [images], noncurrent_days: 0}}\n", []string{
		`kiln.yaml:9:109: distribution.rate_limit.requests: 5: AWS WAF's rate-based rules allow 10 to 2000000000 requests per window`,
		`kiln.yaml:9:120: distribution.rate_limit.window: 7m: AWS WAF's rate-based rules count over 1m, 2m, 5m or 10m`,
		`kiln.yaml:9:139: distribution.aws.bucket: "My.Bucket" is not a valid S3 bucket name (3-63 lowercase letters, digits, dots and dashes)`,
		`kiln.yaml:9:163: distribution.aws.price_class: "cheap"; allowed: PriceClass_100, PriceClass_200, PriceClass_All`,
		`kiln.yaml:9:185: distribution.aws.browser_check: "puzzle"; allowed: captcha, challenge, none`,
		`kiln.yaml:9:205: distribution.aws.cli_paths[0]: "images" is not a path prefix such as /images/`,
		`kiln.yaml:9:231: distribution.aws.noncurrent_days: 0: removed files must stay at least 1 day`}},
	{"distribution aws bucket", awsBase + "distribution: {public_key: " + testPublicKey + "}\n", []string{
		`kiln.yaml:9:1: distribution.aws.bucket: missing; name the private S3 bucket the download tree lives in (the stack creates it)`}},
	{"serve", localBase + "serve: {listen: example.com:80, tls_cert: c.pem, trusted_proxies: [\"::1/200\"]}\n", []string{
		`kiln.yaml:7:17: serve.listen: host "example.com" is not an IP address or localhost`,
		`kiln.yaml:7:43: serve.tls_cert: set tls_cert and tls_key together (a certificate and its private key, PEM)`,
		`kiln.yaml:7:68: serve.trusted_proxies[0]: "::1/200" is not a network in CIDR notation such as 10.0.0.0/8 or 2001:db8::/32`}},
}

func TestDistributionDefaults(t *testing.T) {
	dir := newProject(t)
	c, err := Parse("kiln.yaml", []byte(awsBase+"distribution: {public_key: "+testPublicKey+", aws: {bucket: demo-dl}}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	d := c.Distribution
	if d.Dir != ".kiln/dist" || d.Keep != 5 || d.RateLimit.Requests != 100 || d.RateLimit.Window.Std() != 5*time.Minute ||
		d.RateLimit.MaxClients != 100000 || d.AWS.Region != "us-east-1" || d.AWS.PriceClass != "PriceClass_100" ||
		d.AWS.BrowserCheck != "captcha" || strings.Join(d.AWS.CLIPaths, ",") != "/streams/,/images/" || d.AWS.NoncurrentDays != 7 {
		t.Fatalf("defaults: %+v", d)
	}
	if c.Serve.Listen != "127.0.0.1:8080" {
		t.Fatalf("serve.listen default %q", c.Serve.Listen)
	}
	c, err = Parse("kiln.yaml", []byte(localBase), dir)
	if err != nil || c.Distribution != nil {
		t.Fatalf("no distribution section: %+v %v", c.Distribution, err)
	}
}
