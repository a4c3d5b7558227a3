package aws

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

// TestEndpointFromEnvironmentOnly points the backend at moto through
// AWS_ENDPOINT_URL and nothing else, and uses every service it talks to:
// STS, EC2, SSM, S3, CloudFormation and the tagging API. A client that
// ignored the variable would try AWS itself with fake credentials and fail.
func TestEndpointFromEnvironmentOnly(t *testing.T) {
	motoServer.Reset(t)
	awstest.Env(t, motoServer.URL)
	ctx := t.Context()
	b, err := New(ctx, config.AWSBackend{AllowedAccounts: []string{awstest.Account}, ExportBucket: "kiln-exports"},
		[]string{"us-east-1", "eu-west-1"}, WithRetryMaxAttempts(2), WithPollInterval(5*time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, b: b}
	tags := runTags()

	if acct, err := b.Account(ctx); err != nil || acct != awstest.Account { // STS
		t.Fatalf("Account: %q, %v", acct, err)
	}
	src := seedImage(t, r.ec2("us-east-1"), "candidate", tags)
	copyImg, err := b.CopyImage(ctx, cloud.CopyInput{SourceRegion: "us-east-1", SourceID: *src.ImageId, Region: "eu-west-1", // EC2
		Name: "copy", Tags: tags, Token: "env-copy"})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.PutParameters(ctx, []cloud.Parameter{{Region: "eu-west-1", Name: "/kiln/env", ImageID: copyImg.ID, Tags: tags}}); err != nil { // SSM
		t.Fatal(err)
	}
	// S3 and CloudFormation, through ListAssets' export and stack paths.
	makeBucket(t, r, "eu-west-1", "kiln-exports")
	if _, err := r.s3("eu-west-1").PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("kiln-exports"), Key: aws.String("export-ami-0123.vmdk"),
		Tagging: aws.String(cloud.TagAssetID + "=" + tags[cloud.TagAssetID])}); err != nil {
		t.Fatal(err)
	}
	createStack(t, r, "eu-west-1", "kiln-env", tags)
	got, err := b.ListAssets(ctx, "eu-west-1", cloud.Filter{Tags: map[string]string{cloud.TagAssetID: tags[cloud.TagAssetID]}}) // tagging API
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[cloud.Kind]bool{}
	for _, a := range got {
		kinds[a.Kind] = true
	}
	for _, k := range []cloud.Kind{cloud.KindImage, cloud.KindParameter, cloud.KindExport, cloud.KindStack} {
		if !kinds[k] {
			t.Errorf("ListAssets through AWS_ENDPOINT_URL found no %s; got %v", k, assetLines(got))
		}
	}
}

// TestServiceEndpointOverride checks that AWS_ENDPOINT_URL_EC2 wins over
// AWS_ENDPOINT_URL for EC2 only.
func TestServiceEndpointOverride(t *testing.T) {
	motoServer.Reset(t)
	awstest.Env(t, "http://127.0.0.1:1") // nothing listens there
	t.Setenv("AWS_ENDPOINT_URL_EC2", motoServer.URL)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b, err := New(ctx, config.AWSBackend{}, []string{"us-east-1"}, WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ListImages(ctx, "us-east-1", cloud.Filter{}); err != nil {
		t.Errorf("EC2 through AWS_ENDPOINT_URL_EC2: %v", err)
	}
	if _, err := b.Account(ctx); err == nil {
		t.Error("STS reached an endpoint although only EC2 was overridden to one that answers")
	}
}

func createStack(t *testing.T, r *rig, region, name string, tags map[string]string) {
	t.Helper()
	var cfnTags []cfntypes.Tag
	for k, v := range tags {
		cfnTags = append(cfnTags, cfntypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	tmpl := `{"Resources":{"Group":{"Type":"AWS::EC2::SecurityGroup","Properties":{"GroupDescription":"x"}}}}`
	if _, err := r.cfn(region).CreateStack(t.Context(), &cloudformation.CreateStackInput{
		StackName: aws.String(name), TemplateBody: aws.String(tmpl), Tags: cfnTags}); err != nil {
		t.Fatal(err)
	}
}
