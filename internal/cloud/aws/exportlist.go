package aws

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/kiln-images/kiln/internal/cloud"
)

// errOtherRegion: the export bucket lives in another region, whose
// inventory lists its files.
var errOtherRegion = errors.New("export bucket is in another region")

type exportObject struct {
	location string
	modified time.Time
	size     int64
	tags     map[string]string
}

// listExports lists the files ExportImage wrote under prefix in bucket
// (export-ami-*), with their tags. Exports belong to the bucket's region,
// since EC2 exports only to a bucket in the image's region.
func listExports(ctx context.Context, c *regional, bucket, prefix string) ([]exportObject, error) {
	loc, err := c.s3.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
	if errors.Is(classify(err), cloud.ErrNotFound) {
		return nil, nil // no bucket, no exports
	}
	if err != nil {
		return nil, fmt.Errorf("location of export bucket %s: %w", bucket, classify(err))
	}
	if bucketRegion(string(loc.LocationConstraint)) != c.region {
		return nil, errOtherRegion
	}
	var out []exportObject
	p := s3.NewListObjectsV2Paginator(c.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: optional(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list export bucket %s: %w", bucket, classify(err))
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !strings.HasPrefix(path.Base(key), "export-ami-") {
				continue
			}
			tg, err := c.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if err != nil {
				return nil, fmt.Errorf("tags of s3://%s/%s: %w", bucket, key, classify(err))
			}
			tags := map[string]string{}
			for _, t := range tg.TagSet {
				tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			out = append(out, exportObject{location: "s3://" + bucket + "/" + key, modified: aws.ToTime(o.LastModified), size: aws.ToInt64(o.Size), tags: tags})
		}
	}
	return out, nil
}

// bucketRegion turns GetBucketLocation's answer into a region name.
func bucketRegion(constraint string) string {
	switch constraint {
	case "":
		return "us-east-1"
	case "EU":
		return "eu-west-1"
	}
	return constraint
}
