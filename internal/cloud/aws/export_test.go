package aws

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

func makeBucket(t *testing.T, r *rig, region, bucket string) {
	t.Helper()
	in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
	if region != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}
	}
	if _, err := r.s3(region).CreateBucket(t.Context(), in); err != nil {
		t.Fatal(err)
	}
}

func TestExportImage(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.AWSBackend) {
		c.ExportBucket, c.ExportPrefix, c.ExportRoleName = "kiln-exports", "images/", "kiln-export-role"
	}))
	makeBucket(t, r, "us-east-1", "kiln-exports")
	src := seedImage(t, r.ec2("us-east-1"), "release", nil)
	in := cloud.ExportInput{Region: "us-east-1", ImageID: *src.ImageId, Format: "vmdk", Tags: runTags(), Token: "export-token"}
	exp, err := r.b.ExportImage(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Format != "vmdk" || !strings.HasPrefix(exp.Location, "s3://kiln-exports/images/export-ami-") || !strings.HasSuffix(exp.Location, ".vmdk") {
		t.Fatalf("export %+v", exp)
	}
	bucket, key, _ := splitS3(exp.Location)
	obj, err := r.s3("us-east-1").GetObject(t.Context(), &s3.GetObjectInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatalf("exported file: %v", err)
	}
	body, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if !strings.Contains(string(body), *src.ImageId) {
		t.Errorf("exported file holds %q", body)
	}
	tg, err := r.s3("us-east-1").GetObjectTagging(t.Context(), &s3.GetObjectTaggingInput{Bucket: &bucket, Key: &key})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tag := range tg.TagSet {
		got[*tag.Key] = *tag.Value
	}
	if miss := missingTags(got, runTags()); len(miss) > 0 {
		t.Errorf("exported file lacks tags %v", miss)
	}
	req := r.stub.Requests("ec2", "ExportImage")[0].Form
	for k, want := range map[string]string{"DiskImageFormat": "VMDK", "RoleName": "kiln-export-role", "S3ExportLocation.S3Bucket": "kiln-exports",
		"S3ExportLocation.S3Prefix": "images/", "ClientToken": "export-token", "TagSpecification.1.ResourceType": "export-image-task"} {
		if req.Get(k) != want {
			t.Errorf("ExportImage %s = %q, want %q", k, req.Get(k), want)
		}
	}

	// A rerun finds the task by its token and exports nothing new.
	again, err := r.b.ExportImage(t.Context(), in)
	if err != nil || again != exp {
		t.Errorf("rerun: %+v, %v; want %+v", again, err, exp)
	}
	if n := r.stub.Calls("ec2", "ExportImage"); n != 1 {
		t.Errorf("ExportImage called %d times, want 1", n)
	}
}

func TestExportImageFails(t *testing.T) {
	r := newRig(t, withConfig(func(c *config.AWSBackend) { c.ExportBucket = "no-such-bucket" }))
	src := seedImage(t, r.ec2("us-east-1"), "release", nil)
	_, err := r.b.ExportImage(t.Context(), cloud.ExportInput{Region: "us-east-1", ImageID: *src.ImageId, Format: "raw", Token: "t"})
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Errorf("export to a missing bucket: %v, want the task's failure naming the bucket", err)
	}
	_, err = r.b.ExportImage(t.Context(), cloud.ExportInput{Region: "us-east-1", ImageID: *src.ImageId, Format: "qcow2", Token: "t2"})
	if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), `"qcow2"`) {
		t.Errorf("export as qcow2: %v, want ErrInvalid naming the format", err)
	}
}
