package cdn

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testSpec() Spec {
	return Spec{
		Project: "demo", Bucket: "demo-downloads", Region: "eu-west-1", PriceClass: "PriceClass_100",
		Requests: 100, Window: 5 * time.Minute, AllowV4: []string{"10.0.0.0/8", "192.0.2.0/24"}, AllowV6: []string{"2001:db8::/32"},
		BrowserCheck: "captcha", CLIPaths: []string{"/streams/", "/images/"}, NoncurrentDays: 7,
		Tags: map[string]string{"kiln:managed": "true", "kiln:project": "demo", "kiln:retain": "true", "kiln:component": "downloads", "deployment_name": "demo"},
	}
}

// lint runs cfn-lint once on templates (it takes seconds to start) and
// returns its findings per template.
func lint(t *testing.T, tmpls map[string]Template) map[string]string {
	t.Helper()
	if _, err := exec.LookPath("cfn-lint"); err != nil {
		t.Fatalf("cfn-lint is not installed: %v", err)
	}
	dir := t.TempDir()
	args := []string{"--format", "parseable", "--regions", FirewallRegion, "eu-west-1", "--"}
	for name, tmpl := range tmpls {
		p := filepath.Join(dir, name+".json")
		os.WriteFile(p, tmpl.JSON(), 0o644)
		args = append(args, p)
	}
	out, err := exec.Command("cfn-lint", args...).CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		for name := range tmpls {
			if strings.HasPrefix(line, filepath.Join(dir, name+".json")+":") {
				found[name] += line + "\n"
			}
		}
	}
	if err != nil && len(found) == 0 {
		t.Fatalf("cfn-lint failed: %v\n%s", err, out)
	}
	return found
}

func TestTemplatesLint(t *testing.T) {
	s := testSpec()
	bad := testSpec()
	bad.Requests, bad.Window = 5, 7*time.Minute
	found := lint(t, map[string]Template{"firewall": s.FirewallTemplate(), "site": s.SiteTemplate(), "bad": bad.FirewallTemplate()})
	for _, name := range []string{"firewall", "site"} {
		if found[name] != "" {
			t.Errorf("cfn-lint on the %s template:\n%s", name, found[name])
		}
	}
	// The lint is not a formality: limits AWS refuses fail it.
	if !strings.Contains(found["bad"], "5 is less than the minimum of 10") || !strings.Contains(found["bad"], "420 is not one of [60, 120, 300, 600]") {
		t.Errorf("cfn-lint passed a rate limit of 5 per 7 minutes:\n%s", found["bad"])
	}
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "rate limit 5: AWS WAF allows 10 to 2000000000") || !strings.Contains(err.Error(), "window 7m0s") {
		t.Fatalf("Check: %v", err)
	}
}

// decode turns a template into plain JSON values, as CloudFormation reads it.
func decode(t *testing.T, tmpl Template) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(tmpl.JSON(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func tagsOf(v any) map[string]string {
	out := map[string]string{}
	for _, t := range at(v, "Tags").([]any) {
		out[at(t, "Key").(string)] = at(t, "Value").(string)
	}
	return out
}

// The properties that keep the downloads private and guarded, asserted
// on the templates themselves: moto skips these resource types, so no
// deployment there could show them.
func TestSiteIsPrivate(t *testing.T) {
	m := decode(t, testSpec().SiteTemplate())
	res := at(m, "Resources").(map[string]any)
	b := at(res, "Bucket", "Properties")
	if at(res, "Bucket", "DeletionPolicy") != "Retain" {
		t.Error("the bucket is not retained when the stack goes")
	}
	if at(b, "OwnershipControls", "Rules", 0, "ObjectOwnership") != "BucketOwnerEnforced" {
		t.Error("ACLs are not disabled (BucketOwnerEnforced)")
	}
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if at(b, "PublicAccessBlockConfiguration", k) != true {
			t.Errorf("public access block %s is not on", k)
		}
	}
	if at(b, "BucketEncryption", "ServerSideEncryptionConfiguration", 0, "ServerSideEncryptionByDefault", "SSEAlgorithm") != "AES256" {
		t.Error("no default encryption")
	}
	if at(b, "LifecycleConfiguration", "Rules", 0, "NoncurrentVersionExpiration", "NoncurrentDays") != 7.0 || at(b, "VersioningConfiguration", "Status") != "Enabled" {
		t.Error("no lifecycle for retired files")
	}
	d := at(res, "Distribution", "Properties", "DistributionConfig")
	origin := at(d, "Origins", 0)
	if at(origin, "OriginAccessControlId", "Fn::GetAtt", 0) != "OriginAccessControl" || at(origin, "S3OriginConfig", "OriginAccessIdentity") != "" {
		t.Error("the origin is not read through origin access control")
	}
	if at(res, "OriginAccessControl", "Properties", "OriginAccessControlConfig", "SigningBehavior") != "always" {
		t.Error("CloudFront does not always sign its requests")
	}
	if at(d, "WebACLId", "Ref") != "WebACLArn" || at(d, "DefaultCacheBehavior", "ViewerProtocolPolicy") != "redirect-to-https" {
		t.Error("the distribution is not guarded by the web ACL over HTTPS")
	}
	stmts := at(res, "BucketPolicy", "Properties", "PolicyDocument", "Statement").([]any)
	for _, st := range stmts {
		if at(st, "Effect") != "Allow" {
			continue
		}
		if at(st, "Principal", "Service") != "cloudfront.amazonaws.com" || at(st, "Action") != "s3:GetObject" {
			t.Errorf("the bucket policy allows %v to %v", at(st, "Principal"), at(st, "Action"))
		}
		arn, _ := at(st, "Condition", "StringEquals", "AWS:SourceArn", "Fn::Sub").(string)
		if !strings.HasSuffix(arn, ":distribution/${Distribution}") {
			t.Errorf("the read is not bound to this distribution: %v", at(st, "Condition"))
		}
	}
	if at(stmts[1], "Effect") != "Deny" || at(stmts[1], "Condition", "Bool", "aws:SecureTransport") != "false" {
		t.Error("plain-HTTP access to the bucket is not denied")
	}
	for _, r := range []string{"Bucket", "Distribution"} {
		tags := tagsOf(at(res, r, "Properties"))
		if tags["kiln:retain"] != "true" || tags["deployment_name"] != "demo" || tags["kiln:project"] != "demo" || tags["kiln:managed"] != "true" {
			t.Errorf("%s tags %v", r, tags)
		}
	}
}

func TestFirewallRules(t *testing.T) {
	for _, check := range []string{"captcha", "challenge", "none"} {
		s := testSpec()
		s.BrowserCheck = check
		m := decode(t, s.FirewallTemplate())
		acl := at(m, "Resources", "WebACL", "Properties")
		if at(acl, "Scope") != "CLOUDFRONT" || at(acl, "DefaultAction", "Allow") == nil {
			t.Fatal("not a CloudFront web ACL allowing by default")
		}
		rules := at(acl, "Rules").([]any)
		if at(rules, 0, "Name") != "allow-list" || at(rules, 0, "Action", "Allow") == nil || at(rules, 0, "Priority") != 0.0 {
			t.Fatal("the allow-list is not the first rule")
		}
		if at(m, "Resources", "AllowV4", "Properties", "Addresses", 1) != "192.0.2.0/24" || at(m, "Resources", "AllowV6", "Properties", "Addresses", 0) != "2001:db8::/32" {
			t.Error("the allow-list's addresses are not in the IP sets")
		}
		rate := at(rules, 1)
		if at(rate, "Statement", "RateBasedStatement", "Limit") != 100.0 || at(rate, "Statement", "RateBasedStatement", "EvaluationWindowSec") != 300.0 ||
			at(rate, "Action", "Block", "CustomResponse", "ResponseCode") != 429.0 {
			t.Errorf("rate rule %v", rate)
		}
		if check == "none" {
			if len(rules) != 2 {
				t.Errorf("browser_check none: %d rules", len(rules))
			}
			continue
		}
		bc := at(rules, 2)
		action := map[string]string{"captcha": "Captcha", "challenge": "Challenge"}[check]
		if at(bc, "Action", action) == nil {
			t.Errorf("%s: action %v", check, at(bc, "Action"))
		}
		// Never on the paths command-line clients download from.
		paths := at(bc, "Statement", "NotStatement", "Statement", "OrStatement", "Statements").([]any)
		if len(paths) != 2 || at(paths, 0, "ByteMatchStatement", "SearchString") != "/streams/" || at(paths, 1, "ByteMatchStatement", "PositionalConstraint") != "STARTS_WITH" {
			t.Errorf("the browser check is not kept off the CLI paths: %v", at(bc, "Statement"))
		}
		if tags := tagsOf(acl); tags["kiln:retain"] != "true" || tags["deployment_name"] != "demo" {
			t.Errorf("web ACL tags %v", tags)
		}
	}
}
