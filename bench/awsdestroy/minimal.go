package awsdestroy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/fanout"
	"github.com/kiln-images/kiln/internal/teardown/teardowntest"
)

// Minimal tears down what Seed made of s.Deployment with the fewest calls
// the work needs, told every id in advance (as the author of a teardown
// checklist is): no listing to find anything, no check afterwards. In
// parallel, concurrency at a time: every bucket's versions and delete
// markers listed and deleted a thousand at a time, and the buckets outside
// the stacks deleted; every repository of a stack emptied (its stack deletes it) and every
// other deleted with its images (force);
// every snapshot and volume deleted; the role's inline policy, then the
// role. Then the stacks one by one in reverse deploy order: termination
// protection lifted, DeleteStack, DescribeStacks every poll until it is
// gone. The retained set (the Retain resources of a stack, the log group
// and user pool) is left, as kiln leaves it.
func Minimal(ctx context.Context, endpoint string, s teardowntest.Scenario, seeded teardowntest.Seeded, poll time.Duration, concurrency int) error {
	cfg := awstest.Config(endpoint, Region)
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	ecrc, ec2c, iamc, cfnc := ecr.NewFromConfig(cfg), ec2.NewFromConfig(cfg), iam.NewFromConfig(cfg), cloudformation.NewFromConfig(cfg)

	inStack := map[string]bool{}
	var stacks []string
	for _, u := range s.Units {
		inStack[fmt.Sprintf("%s-%s-data", s.Deployment, u)] = true
		inStack[s.Deployment+"/"+u] = true
		stacks = append(stacks, teardowntest.StackName(s.Project, s.Deployment, u))
	}
	errs := fanout.Each(ctx, seeded.Gone, concurrency, func(ctx context.Context, r string) error {
		typ, id, _ := strings.Cut(r, " ")
		switch typ {
		case "bucket":
			if err := emptyBucket(ctx, s3c, id); err != nil {
				return err
			}
			if inStack[id] {
				return nil // its stack deletes it
			}
			_, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(id)})
			return err
		case "repository":
			if inStack[id] {
				// Its stack deletes it, refusing while it holds images.
				return emptyRepository(ctx, ecrc, id)
			}
			_, err := ecrc.DeleteRepository(ctx, &ecr.DeleteRepositoryInput{RepositoryName: aws.String(id), Force: true})
			return err
		case "snapshot":
			_, err := ec2c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
			return err
		case "volume":
			_, err := ec2c.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(id)})
			return err
		case "role":
			// Seed gives the role one inline policy, "read".
			if _, err := iamc.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(id), PolicyName: aws.String("read")}); err != nil {
				return err
			}
			_, err := iamc.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(id)})
			return err
		case "stack":
			return nil // below, in order
		}
		return fmt.Errorf("no way to delete a %s (%s)", typ, id)
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("minimal teardown: %w", err)
	}
	for _, name := range slices.Backward(stacks) {
		if s.Protected {
			if _, err := cfnc.UpdateTerminationProtection(ctx, &cloudformation.UpdateTerminationProtectionInput{
				StackName: aws.String(name), EnableTerminationProtection: aws.Bool(false)}); err != nil {
				return fmt.Errorf("minimal teardown: %s: %w", name, err)
			}
		}
		if _, err := cfnc.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(name)}); err != nil {
			return fmt.Errorf("minimal teardown: %s: %w", name, err)
		}
		if err := waitDeleted(ctx, cfnc, name, poll); err != nil {
			return err
		}
	}
	return nil
}

// emptyBucket deletes every object version and delete marker of bucket, a
// listing page (up to 1,000) per DeleteObjects.
func emptyBucket(ctx context.Context, c *s3.Client, bucket string) error {
	p := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list the versions in %s: %w", bucket, err)
		}
		var ids []s3types.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(ids) == 0 {
			continue
		}
		if _, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(true)}}); err != nil {
			return fmt.Errorf("delete the versions in %s: %w", bucket, err)
		}
	}
	return nil
}

// emptyRepository deletes every image of repo, a listing page (up to
// 100) per BatchDeleteImage.
func emptyRepository(ctx context.Context, c *ecr.Client, repo string) error {
	p := ecr.NewListImagesPaginator(c, &ecr.ListImagesInput{RepositoryName: aws.String(repo)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list the images in %s: %w", repo, err)
		}
		if len(page.ImageIds) == 0 {
			continue
		}
		if _, err := c.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String(repo), ImageIds: page.ImageIds}); err != nil {
			return fmt.Errorf("delete the images in %s: %w", repo, err)
		}
	}
	return nil
}

// waitDeleted reads the stack every poll until it is gone.
func waitDeleted(ctx context.Context, c *cloudformation.Client, name string, poll time.Duration) error {
	for {
		out, err := c.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
		if err != nil {
			if strings.Contains(err.Error(), "does not exist") {
				return nil
			}
			return fmt.Errorf("minimal teardown: %s: %w", name, err)
		}
		if len(out.Stacks) == 0 || out.Stacks[0].StackStatus == cfntypes.StackStatusDeleteComplete {
			return nil
		}
		if out.Stacks[0].StackStatus == cfntypes.StackStatusDeleteFailed {
			return fmt.Errorf("minimal teardown: %s: %s: %s", name, out.Stacks[0].StackStatus, aws.ToString(out.Stacks[0].StackStatusReason))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}
