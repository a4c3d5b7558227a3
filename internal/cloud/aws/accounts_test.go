package aws

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/config"
)

const distAccount = "210987654321"

func withPublishAccount(allowed ...string) rigOption {
	return withConfig(func(c *config.AWSBackend) {
		c.AllowedAccounts = allowed
		c.PublishAccounts = []config.PublishAccount{{RoleARN: "arn:aws:iam::" + distAccount + ":role/kiln-publish"}}
	})
}

// A copy into another account's location assumes its role, shares the
// source with it, and lands there, tagged, with the location as region;
// the build account gets no copy.
func TestCopyIntoPublishAccount(t *testing.T) {
	r := newRig(t, withPublishAccount(awstest.Account, distAccount))
	src := seedImage(t, r.ec2("us-east-1"), "candidate-image", nil)
	loc := config.Location(distAccount, "us-west-2")
	img, err := r.b.CopyImage(t.Context(), cloud.CopyInput{
		SourceRegion: "us-east-1", SourceID: aws.ToString(src.ImageId), Region: loc, Name: "release-1",
		Tags: map[string]string{cloud.TagManaged: "true"}, Token: "t1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if img.Region != loc {
		t.Errorf("copy's region = %q, want %q", img.Region, loc)
	}
	dist := ec2.NewFromConfig(awstest.AccountConfig(t, motoServer.URL, "us-west-2", distAccount))
	out, err := dist.DescribeImages(t.Context(), &ec2.DescribeImagesInput{ImageIds: []string{img.ID}})
	if err != nil || len(out.Images) != 1 || aws.ToString(out.Images[0].OwnerId) != distAccount || aws.ToString(out.Images[0].Name) != "release-1" {
		t.Fatalf("the distribution account's copy: %+v, %v", out, err)
	}
	if home, _ := r.ec2("us-west-2").DescribeImages(t.Context(), &ec2.DescribeImagesInput{Owners: []string{"self"}}); len(home.Images) != 0 {
		t.Errorf("the build account has %d images in us-west-2", len(home.Images))
	}
	// Found again by its token, through the location.
	again, err := r.b.CopyImage(t.Context(), cloud.CopyInput{SourceRegion: "us-east-1", SourceID: aws.ToString(src.ImageId), Region: loc, Name: "release-1", Token: "t1"})
	if err != nil || again.ID != img.ID {
		t.Fatalf("second copy = %s, %v; want %s", again.ID, err, img.ID)
	}
	perm, err := r.b.LaunchPermissions(t.Context(), "us-east-1", aws.ToString(src.ImageId))
	if err != nil || len(perm.Accounts) != 1 || perm.Accounts[0] != distAccount || perm.Public {
		t.Errorf("the candidate's launch permissions: %+v, %v; want shared with %s only", perm, err, distAccount)
	}
	imgs, err := r.b.ListImages(t.Context(), loc, cloud.Filter{Tags: map[string]string{cloud.TagManaged: "true"}})
	if err != nil || len(imgs) != 1 || imgs[0].Region != loc {
		t.Errorf("ListImages at %s: %+v, %v", loc, imgs, err)
	}
}

// Every account kiln changes something in must be allowed; a location in
// an account without a role is refused before any request.
func TestPublishAccountChecks(t *testing.T) {
	r := newRig(t, withPublishAccount(awstest.Account))
	err := r.b.SetDeprecation(t.Context(), config.Location(distAccount, "us-east-1"), "ami-12345678", time.Now().Add(time.Hour))
	if !errors.Is(err, cloud.ErrAccessDenied) || !strings.Contains(err.Error(), distAccount) {
		t.Errorf("a change in an account not allowed: %v, want ErrAccessDenied naming %s", err, distAccount)
	}
	_, err = r.b.ListImages(t.Context(), config.Location("999999999999", "us-east-1"), cloud.Filter{})
	if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), "publish_accounts") {
		t.Errorf("a location in an account without a role: %v, want ErrInvalid", err)
	}
}
