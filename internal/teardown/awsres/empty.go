package awsres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/teardown"
)

// Empty removes every object version and delete marker of a bucket, or
// every image of a repository; other types hold nothing to empty. It
// lists from the start after each batch it deletes and ends when a
// listing is empty: the check that it is. An absent container is empty.
func (a *Account) Empty(ctx context.Context, r deploy.Resource) error {
	c := a.region(r.Region)
	switch r.Type {
	case teardown.TypeBucket:
		return c.emptyBucket(ctx, r.ID)
	case teardown.TypeRepository:
		return c.emptyRepository(ctx, r.ID)
	}
	return nil
}

// maxEmptyRounds bounds the rounds of one emptying: a bucket something
// keeps writing to is an error, not an endless loop.
const maxEmptyRounds = 100_000

func (c *clients) emptyBucket(ctx context.Context, bucket string) error {
	deleted := 0
	for round := 0; round < maxEmptyRounds; round++ {
		page, err := c.s3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), MaxKeys: aws.Int32(1000)})
		if notFound(err) {
			return nil
		}
		if err != nil {
			return wrap("list the versions in bucket", bucket, err)
		}
		ids := make([]s3types.ObjectIdentifier, 0, len(page.Versions)+len(page.DeleteMarkers))
		for _, v := range page.Versions {
			ids = append(ids, s3types.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, s3types.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(ids) == 0 {
			if deleted > 0 {
				c.log(ctx, "bucket emptied", "bucket", bucket, "versions", deleted)
			}
			return nil
		}
		for batch := range slices.Chunk(ids, 1000) {
			out, err := c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket),
				Delete: &s3types.Delete{Objects: batch, Quiet: aws.Bool(true)}})
			if err != nil {
				return wrap("empty bucket", bucket, err)
			}
			if len(out.Errors) > 0 {
				e := out.Errors[0]
				return fmt.Errorf("empty bucket %s: %s: %s %s (and %d more)", bucket, aws.ToString(e.Key), aws.ToString(e.Code),
					strings.TrimSpace(aws.ToString(e.Message)), len(out.Errors)-1)
			}
			deleted += len(batch)
		}
	}
	return fmt.Errorf("empty bucket %s: still not empty after %d rounds (something keeps writing to it)", bucket, maxEmptyRounds)
}

func (c *clients) emptyRepository(ctx context.Context, repo string) error {
	for round := 0; round < maxEmptyRounds; round++ {
		page, err := c.ecr.ListImages(ctx, &ecr.ListImagesInput{RepositoryName: aws.String(repo), MaxResults: aws.Int32(1000)})
		if notFound(err) {
			return nil
		}
		if err != nil {
			return wrap("list the images in repository", repo, err)
		}
		if len(page.ImageIds) == 0 {
			return nil
		}
		// An image with several tags is listed once per tag; its digest
		// deletes it whole.
		var ids []ecrtypes.ImageIdentifier
		seen := map[string]bool{}
		for _, id := range page.ImageIds {
			if d := aws.ToString(id.ImageDigest); d != "" && !seen[d] {
				seen[d] = true
				ids = append(ids, ecrtypes.ImageIdentifier{ImageDigest: id.ImageDigest})
			}
		}
		for batch := range slices.Chunk(ids, 100) {
			out, err := c.ecr.BatchDeleteImage(ctx, &ecr.BatchDeleteImageInput{RepositoryName: aws.String(repo), ImageIds: batch})
			if err != nil {
				return wrap("delete the images in repository", repo, err)
			}
			for _, f := range out.Failures {
				if f.FailureCode != ecrtypes.ImageFailureCodeImageNotFound {
					return fmt.Errorf("delete image %s in repository %s: %s: %s", aws.ToString(f.ImageId.ImageDigest), repo, f.FailureCode, aws.ToString(f.FailureReason))
				}
			}
		}
	}
	return fmt.Errorf("empty repository %s: still not empty after %d rounds", repo, maxEmptyRounds)
}
