package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/wafv2"
	waftypes "github.com/aws/aws-sdk-go-v2/service/wafv2/types"

	"github.com/kiln-images/kiln/internal/cdn"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/minisign"
	"github.com/kiln-images/kiln/internal/report"
)

// distAWS turns an aws world into a project with exports and downloads in
// the bucket kiln-dl behind CloudFront.
func distAWS(t *testing.T, w *awsWorld) minisign.PrivateKey {
	t.Helper()
	key, _ := minisign.GenerateKey(nil)
	sec, _ := key.MarshalText()
	os.MkdirAll(filepath.Join(w.dir, "keys"), 0o700)
	os.WriteFile(filepath.Join(w.dir, "keys/kiln.key"), sec, 0o600)
	data, _ := os.ReadFile(w.cfg)
	s := strings.Replace(string(data), "    test_timeout: 1m\n", "    test_timeout: 1m\n    export_bucket: kiln-exports\n    export_prefix: exports/\n", 1)
	s = strings.Replace(s, "    tests: [tests/boot.sh]\n", "    tests: [tests/boot.sh]\n    exports: [vmdk]\n", 1)
	s += fmt.Sprintf(`distribution:
  signing_key: keys/kiln.key
  public_key: %s
  rate_limit: {requests: 100, window: 5m, allow: [10.0.0.0/8, "2001:db8::/32"]}
  aws: {bucket: kiln-dl, region: us-east-1}
`, key.Public())
	os.WriteFile(w.cfg, []byte(s), 0o644)
	if _, err := w.s3().CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("kiln-exports")}); err != nil {
		t.Fatal(err)
	}
	return key
}

// standIns make, straight through the WAF and CloudFront APIs, the web ACL
// and distribution the stacks describe: moto's CloudFormation skips these
// resource types (see docs/moto.md), so a deploy there makes none.
func standIns(t *testing.T, limit int64) (aclARN, distID string) {
	t.Helper()
	cfg := awstest.Config(motoServer.URL, "us-east-1")
	waf := wafv2.NewFromConfig(cfg)
	vc := &waftypes.VisibilityConfig{SampledRequestsEnabled: true, CloudWatchMetricsEnabled: true, MetricName: aws.String("m")}
	ip, err := waf.CreateIPSet(t.Context(), &wafv2.CreateIPSetInput{Name: aws.String("grit-downloads-allow-v4"), Scope: waftypes.ScopeCloudfront,
		IPAddressVersion: waftypes.IPAddressVersionIpv4, Addresses: []string{"10.0.0.0/8"}})
	if err != nil {
		t.Fatal(err)
	}
	acl, err := waf.CreateWebACL(t.Context(), &wafv2.CreateWebACLInput{
		Name: aws.String("grit-downloads"), Scope: waftypes.ScopeCloudfront, VisibilityConfig: vc,
		DefaultAction: &waftypes.DefaultAction{Allow: &waftypes.AllowAction{}},
		Rules: []waftypes.Rule{
			{Name: aws.String("allow-list"), Priority: 0, VisibilityConfig: vc, Action: &waftypes.RuleAction{Allow: &waftypes.AllowAction{}},
				Statement: &waftypes.Statement{IPSetReferenceStatement: &waftypes.IPSetReferenceStatement{ARN: ip.Summary.ARN}}},
			{Name: aws.String("rate-limit"), Priority: 1, VisibilityConfig: vc, Action: &waftypes.RuleAction{Block: &waftypes.BlockAction{}},
				Statement: &waftypes.Statement{RateBasedStatement: &waftypes.RateBasedStatement{Limit: aws.Int64(limit), EvaluationWindowSec: 300, AggregateKeyType: waftypes.RateBasedStatementAggregateKeyTypeIp}}},
			{Name: aws.String("browser-check"), Priority: 2, VisibilityConfig: vc, Action: &waftypes.RuleAction{Captcha: &waftypes.CaptchaAction{}},
				Statement: &waftypes.Statement{NotStatement: &waftypes.NotStatement{Statement: &waftypes.Statement{ByteMatchStatement: &waftypes.ByteMatchStatement{
					SearchString: []byte("/images/"), FieldToMatch: &waftypes.FieldToMatch{UriPath: &waftypes.UriPath{}},
					PositionalConstraint: waftypes.PositionalConstraintStartsWith, TextTransformations: []waftypes.TextTransformation{{Priority: 0, Type: waftypes.TextTransformationTypeNone}}}}}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cf := cloudfront.NewFromConfig(cfg)
	d, err := cf.CreateDistributionWithTags(t.Context(), &cloudfront.CreateDistributionWithTagsInput{DistributionConfigWithTags: &cftypes.DistributionConfigWithTags{
		DistributionConfig: &cftypes.DistributionConfig{
			CallerReference: aws.String("stand-in"), Comment: aws.String("kiln downloads of grit"), Enabled: aws.Bool(true),
			Origins: &cftypes.Origins{Quantity: aws.Int32(1), Items: []cftypes.Origin{{Id: aws.String("bucket"), DomainName: aws.String("kiln-dl.s3.us-east-1.amazonaws.com"),
				S3OriginConfig: &cftypes.S3OriginConfig{OriginAccessIdentity: aws.String("")}}}},
			DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{TargetOriginId: aws.String("bucket"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyRedirectToHttps,
				CachePolicyId: aws.String("658327ea-f89d-4fab-a63d-7e88639e58f6")},
			WebACLId: acl.Summary.ARN,
		},
		Tags: &cftypes.Tags{Items: []cftypes.Tag{{Key: aws.String("kiln:project"), Value: aws.String("grit")}, {Key: aws.String("kiln:component"), Value: aws.String("downloads")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(acl.Summary.ARN), aws.ToString(d.Distribution.Id)
}

// The aws side on moto: plan shows the two stacks' change sets, deploy
// executes them and reads the web ACL back, a release puts its export and
// the signed index in the bucket and invalidates the index in CloudFront,
// and kiln verify checks the download against it.
func TestAWSDistribution(t *testing.T) {
	w := newAWSWorld(t, "{public: false, accounts: [\"111122223333\"]}")
	key := distAWS(t, w)

	out, stderr, code := w.kiln(t, "distribution", "plan", "-o", "json")
	var plan report.Distribution
	if code != 0 || json.Unmarshal([]byte(out), &plan) != nil || len(plan.Stacks) != 2 || plan.Applied || !strings.Contains(stderr, "nothing was deployed") {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, stderr)
	}
	checkSchema(t, report.SchemaDistribution, out)
	want := map[string][]string{
		"grit-downloads-firewall": {"AllowV4", "AllowV6", "WebACL"},
		"grit-downloads":          {"Bucket", "BucketPolicy", "Distribution", "OriginAccessControl"},
	}
	for _, st := range plan.Stacks {
		var ids []string
		for _, c := range st.Changes {
			if c.Action == "Add" {
				ids = append(ids, c.LogicalID)
			}
		}
		slices.Sort(ids)
		if st.Type != "CREATE" || !slices.Equal(ids, want[st.Name]) {
			t.Errorf("plan of %s: %s %v, want CREATE %v", st.Name, st.Type, ids, want[st.Name])
		}
	}
	if plan.Stacks[0].Region != "us-east-1" || plan.Stacks[0].ChangeSet == "" {
		t.Errorf("firewall plan %+v", plan.Stacks[0])
	}
	// A second plan finds the same change set.
	out, _, _ = w.kiln(t, "distribution", "plan", "-o", "json")
	var again report.Distribution
	json.Unmarshal([]byte(out), &again)
	if again.Stacks[0].ChangeSet != plan.Stacks[0].ChangeSet {
		t.Errorf("a second plan made change set %s, the first %s", again.Stacks[0].ChangeSet, plan.Stacks[0].ChangeSet)
	}

	// The web ACL as deployed elsewhere with another limit: deploy reads it
	// back and reports the difference (exit 1).
	aclARN, distID := standIns(t, 2000)
	out, stderr, code = w.kiln(t, "distribution", "deploy", "-o", "json")
	var dep report.Distribution
	json.Unmarshal([]byte(out), &dep)
	if code != 1 || dep.WebACLArn != aclARN || !slices.ContainsFunc(dep.Problems, func(p string) bool { return strings.Contains(p, "rate limit is 2000 per 300s, want 100 per 300s") }) {
		t.Fatalf("deploy over a changed web ACL: exit %d\n%s\n%s", code, out, stderr)
	}
	if dep.DistributionID != distID || !strings.HasPrefix(dep.URL, "https://") || !strings.HasSuffix(dep.URL, ".cloudfront.net") {
		t.Errorf("deploy found distribution %q at %q, want %s", dep.DistributionID, dep.URL, distID)
	}
	cfn := cloudformation.NewFromConfig(awstest.Config(motoServer.URL, "us-east-1"))
	for _, name := range []string{"grit-downloads-firewall", "grit-downloads"} {
		st, err := cfn.DescribeStacks(t.Context(), &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			t.Fatalf("stack %s: %v", name, err)
		}
		tags := map[string]string{}
		for _, tg := range st.Stacks[0].Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		if string(st.Stacks[0].StackStatus) != "CREATE_COMPLETE" || tags["kiln:retain"] != "true" || tags["deployment_name"] != "grit" || tags["kiln:managed"] != "true" {
			t.Errorf("stack %s: %s, tags %v", name, st.Stacks[0].StackStatus, tags)
		}
	}
	// The bucket is the one CloudFormation made (moto makes buckets).
	if _, err := w.s3().HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: aws.String("kiln-dl")}); err != nil {
		t.Fatalf("the site stack made no bucket: %v", err)
	}
	// A rerun has nothing to change.
	out, stderr, code = w.kiln(t, "distribution", "deploy", "-o", "json")
	json.Unmarshal([]byte(out), &dep)
	if code != 1 || slices.ContainsFunc(dep.Stacks, func(s cdn.StackPlan) bool { return s.Executed }) {
		t.Fatalf("second deploy: exit %d\n%s\n%s", code, out, stderr)
	}

	// A release puts its export and the signed index in the bucket.
	out, stderr, code = w.kiln(t, "release", "ci-runner", "-o", "json")
	if code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, stderr)
	}
	var rel report.Release
	json.Unmarshal([]byte(out), &rel)
	v := rel.Run.Version
	objs, err := w.s3().ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String("kiln-dl")})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	prefix := "images/ci-runner/x86_64/" + v + "/"
	for _, k := range []string{prefix + "ci-runner-x86_64-" + v + ".vmdk", prefix + "SHA256SUMS", prefix + "SHA256SUMS.minisig", "streams/v1/index.json", "streams/v1/index.json.minisig"} {
		if !slices.Contains(keys, k) {
			t.Errorf("%s is not in the bucket: %v", k, keys)
		}
	}
	// CloudFront was told to drop its copies of the index.
	cf := cloudfront.NewFromConfig(awstest.Config(motoServer.URL, "us-east-1"))
	invs, err := cf.ListInvalidations(t.Context(), &cloudfront.ListInvalidationsInput{DistributionId: aws.String(distID)})
	if err != nil || invs.InvalidationList == nil || len(invs.InvalidationList.Items) != 1 {
		t.Fatalf("invalidations: %+v %v", invs, err)
	}
	inv, _ := cf.GetInvalidation(t.Context(), &cloudfront.GetInvalidationInput{DistributionId: aws.String(distID), Id: invs.InvalidationList.Items[0].Id})
	if paths := inv.Invalidation.InvalidationBatch.Paths.Items; !slices.Equal(paths, []string{"/streams/v1/index.json", "/streams/v1/index.json.minisig"}) {
		t.Errorf("invalidated %v", paths)
	}
	// The bucket is private: an anonymous GET is refused (moto enforces
	// that much). Users download through CloudFront, which signs its
	// requests to the bucket (origin access control); a proxy that signs
	// its requests the same way stands in for it.
	if resp, err := http.Get(motoServer.URL + "/kiln-dl/streams/v1/index.json"); err != nil || resp.StatusCode != 403 {
		t.Fatalf("anonymous GET of the index: %v %v", resp, err)
	}
	edge := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequest(r.Method, motoServer.URL+"/kiln-dl"+r.URL.Path, nil)
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=awstest/20261203/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(rw, err.Error(), 502)
			return
		}
		defer resp.Body.Close()
		rw.WriteHeader(resp.StatusCode)
		io.Copy(rw, resp.Body)
	}))
	defer edge.Close()
	resp, err := http.Get(edge.URL + "/" + prefix + "ci-runner-x86_64-" + v + ".vmdk")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("download through the CDN stand-in: %v %v", resp, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	file := filepath.Join(t.TempDir(), "ci-runner.vmdk")
	os.WriteFile(file, body, 0o644)
	vp, vcode := runKiln(t, nil, "verify", "--image", file, "--index", edge.URL, "--public-key", key.Public().String(), "-c", filepath.Join(t.TempDir(), "none.yaml"))
	if vcode != 0 {
		t.Fatalf("kiln verify against the bucket: exit %d\n%s%s", vcode, vp.stdout.String(), vp.stderr.String())
	}
}
