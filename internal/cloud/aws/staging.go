package aws

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Staging: a bundle goes to backend.aws.bucket under stagingPrefix, one
// object per run and step (its key derives from the token, so a rerun
// writes the same object again), tagged like every asset. The instance
// gets a presigned GET, which needs no permission on the instance and
// expires soon after the instance has had time to boot. The object is
// deleted as soon as the instance has fetched what it needs: with the
// build's or test's temporary resources, and by cleanup as an asset of
// kind object.

// stagingPrefix is where staged bundles live in the bucket.
const stagingPrefix = "kiln/staging/"

// presignFor is how long a staged bundle's URL works: long enough for an
// instance to be scheduled and boot, short enough that the user data,
// which anyone who may describe the instance can read, soon opens nothing.
const presignFor = 30 * time.Minute

// maxObjectTags is S3's limit of tags per object.
const maxObjectTags = 10

// stagingKey is the object key of the bundle staged for token.
func stagingKey(tags map[string]string, token string) string {
	run := tags[cloud.TagAssetID]
	if run == "" {
		run = "none"
	}
	return stagingPrefix + run + "/" + token + ".tgz"
}

// stagingLocation is the asset id of a staged object.
func (b *Backend) stagingLocation(key string) string { return "s3://" + b.cfg.Bucket + "/" + key }

// staged is a bundle an instance can fetch.
type staged struct {
	key string // "" when the bundle travels in the user data
	url string
}

// stage puts the bundle for token into the bucket and returns a presigned
// URL for it; without a bucket the bundle travels inline (staged{}).
func (b *Backend) stage(ctx context.Context, c *regional, bd bundle, tags map[string]string, token string) (staged, error) {
	if b.cfg.Bucket == "" {
		if bd.secret {
			return staged{}, cloud.Mark(errors.New("the bundle holds a secret variable, which must not travel in user data: set backend.aws.bucket"), cloud.ErrInvalid)
		}
		return staged{}, nil
	}
	key := stagingKey(tags, token)
	sum := sha256.Sum256(bd.data)
	_, err := c.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:         aws.String(b.cfg.Bucket),
		Key:            aws.String(key),
		Body:           bytes.NewReader(bd.data),
		ContentLength:  aws.Int64(int64(len(bd.data))),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
		Tagging:        aws.String(objectTagging(withTags(tags, map[string]string{cloud.TagToken: token}))),
	})
	if err != nil {
		return staged{}, fmt.Errorf("stage the bundle at s3://%s/%s (backend.aws.bucket must exist in %s): %w", b.cfg.Bucket, key, c.region, classify(err))
	}
	req, err := s3.NewPresignClient(c.s3).PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(b.cfg.Bucket),
		Key:    aws.String(key),
	}, s3.WithPresignExpires(presignFor))
	if err != nil {
		return staged{}, fmt.Errorf("presign s3://%s/%s: %w", b.cfg.Bucket, key, err)
	}
	b.log.Info("bundle staged", "region", c.region, "object", b.stagingLocation(key), "bytes", len(bd.data), "sha256", bd.sha256)
	return staged{key: key, url: req.URL}, nil
}

// unstage deletes the bundle staged for token; an absent one is done.
// Without a bucket there is nothing to delete.
func (b *Backend) unstage(ctx context.Context, c *regional, tags map[string]string, token string) error {
	if b.cfg.Bucket == "" {
		return nil
	}
	key := stagingKey(tags, token)
	return deleteObject(ctx, c, b.cfg.Bucket, key)
}

func deleteObject(ctx context.Context, c *regional, bucket, key string) error {
	_, err := c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err = classify(err); err != nil && !errors.Is(err, cloud.ErrNotFound) {
		return fmt.Errorf("delete s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// objectTags keeps at most maxObjectTags of tags: the ones inventory and
// cleanup select by first, then the rest in key order.
func objectTags(tags map[string]string) map[string]string {
	if len(tags) <= maxObjectTags {
		return tags
	}
	first := []string{cloud.TagManaged, cloud.TagProject, cloud.TagAssetID, cloud.TagToken, cloud.TagPhase, cloud.TagUseCase, cloud.TagDeployment}
	var keys []string
	for _, k := range first {
		if _, ok := tags[k]; ok {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range tags {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	// The cost tag (not kiln:) before kiln's own informational tags.
	slices.SortFunc(rest, func(a, b string) int {
		ak, bk := strings.HasPrefix(a, "kiln:"), strings.HasPrefix(b, "kiln:")
		switch {
		case ak != bk && !ak:
			return -1
		case ak != bk:
			return 1
		}
		return strings.Compare(a, b)
	})
	keys = append(keys, rest...)
	out := map[string]string{}
	for _, k := range keys[:maxObjectTags] {
		out[k] = tags[k]
	}
	return out
}

// objectTagging is S3's x-amz-tagging form of tags.
func objectTagging(tags map[string]string) string {
	q := url.Values{}
	for k, v := range objectTags(tags) {
		q.Set(k, v)
	}
	return q.Encode()
}

// listStaged lists the staged bundles in the bucket whose tags match want,
// when the bucket lives in c's region (its objects are that region's
// assets).
func (inv *inventory) staged(ctx context.Context, want map[string]string) error {
	bucket := inv.b.cfg.Bucket
	if bucket == "" || len(want) == 0 {
		return nil
	}
	region, err := inv.b.bucketRegion(ctx, inv.c, bucket)
	if errors.Is(err, cloud.ErrNotFound) {
		return nil // no bucket, nothing staged
	}
	if err != nil {
		return err
	}
	if region != inv.c.region {
		return nil
	}
	prefix := stagingPrefix
	if run := want[cloud.TagAssetID]; run != "" {
		prefix += run + "/"
	}
	p := s3.NewListObjectsV2Paginator(inv.c.s3, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, classify(err))
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			tg, err := inv.c.s3.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(bucket), Key: aws.String(key)})
			if errors.Is(classify(err), cloud.ErrNotFound) {
				continue // deleted since the listing
			}
			if err != nil {
				return fmt.Errorf("tags of s3://%s/%s: %w", bucket, key, classify(err))
			}
			tags := tagSetMap(tg.TagSet)
			if cloud.Match(tags, want) {
				inv.add(cloud.Asset{Kind: cloud.KindObject, ID: "s3://" + bucket + "/" + key, Created: aws.ToTime(o.LastModified), Tags: tags})
			}
		}
	}
	return nil
}

func tagSetMap(set []s3types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range set {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// bucketRegion returns the region of bucket, asked once per Backend.
func (b *Backend) bucketRegion(ctx context.Context, c *regional, bucket string) (string, error) {
	b.mu.Lock()
	r, ok := b.bucketRegions[bucket]
	b.mu.Unlock()
	if ok {
		return r, nil
	}
	loc, err := c.s3.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
	if err != nil {
		return "", fmt.Errorf("location of bucket %s: %w", bucket, classify(err))
	}
	r = bucketRegion(string(loc.LocationConstraint))
	b.mu.Lock()
	b.bucketRegions[bucket] = r
	b.mu.Unlock()
	return r, nil
}
