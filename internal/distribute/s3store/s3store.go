// Package s3store keeps a distribution tree (package distribute) in an S3
// bucket served by CloudFront: the layout of a local tree, with the
// exports ExportImage wrote copied in server-side, and the CloudFront
// copies of the index dropped after each publication.
//
// S3 has no rename and no transaction, so a publication cannot switch the
// index and its signature in one step as a local tree does. It comes
// close: products files are named by their content, so a new index never
// names a products file that is not complete already; the signature of
// the index is written just before the index itself, and a reader who
// fetches one of each publication in the milliseconds between the two
// PUTs sees a signature that does not verify and tries again (kiln verify
// does, once). Files a publication no longer names are deleted; with the
// bucket versioned, their noncurrent versions go after the lifecycle's
// days.
package s3store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/kiln-images/kiln/internal/distribute"
)

// Tags that mark the CloudFront distribution of a project's downloads.
const (
	TagProject   = "kiln:project"
	TagComponent = "kiln:component"
	Component    = "downloads"
)

// maxCopy is the largest object one CopyObject copies; larger ones are
// copied in parts.
const maxCopy = 5 << 30

// Store is a tree in a bucket.
type Store struct {
	Bucket  string
	Project string
	S3      *s3.Client
	// CloudFront, when set, is asked to drop its copies of the index after
	// each commit.
	CloudFront *cloudfront.Client
	Log        *slog.Logger
	// PartSize of server-side copies of objects larger than 5 GiB; default
	// 512 MiB. Tests lower it.
	PartSize  int64
	CopyLimit int64 // default 5 GiB
}

var (
	_ distribute.Store       = (*Store)(nil)
	_ distribute.Invalidator = (*Store)(nil)
)

// New returns the tree in bucket, with clients made from cfg: S3 in the
// bucket's region, CloudFront (a global service) in us-east-1.
func New(cfg aws.Config, bucket, region, project string, log *slog.Logger) *Store {
	c := cfg.Copy()
	c.Region = region
	s3c := s3.NewFromConfig(c, func(o *s3.Options) {
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true // moto, MinIO
		}
	})
	g := cfg.Copy()
	g.Region = "us-east-1"
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{Bucket: bucket, Project: project, S3: s3c, CloudFront: cloudfront.NewFromConfig(g), Log: log}
}

func (s *Store) Name() string { return "s3://" + s.Bucket }

// Lock does not exclude other publishers: S3 offers no lock kiln could
// take. Publish to one bucket from one place (one CI job at a time).
func (s *Store) Lock(ctx context.Context) (func(), error) { return func() {}, nil }

func notFound(err error) bool {
	var nsk *s3types.NoSuchKey
	var nf *s3types.NotFound
	var api smithy.APIError
	return errors.As(err, &nsk) || errors.As(err, &nf) || (errors.As(err, &api) && (api.ErrorCode() == "NotFound" || api.ErrorCode() == "NoSuchKey"))
}

func (s *Store) wrap(op, key string, err error) error {
	if notFound(err) {
		return fmt.Errorf("%s s3://%s/%s: %w", op, s.Bucket, key, fs.ErrNotExist)
	}
	return fmt.Errorf("%s s3://%s/%s: %w", op, s.Bucket, key, err)
}

func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	return out.Body, nil
}

func (s *Store) Size(ctx context.Context, key string) (int64, error) {
	out, err := s.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.Bucket, Key: &key})
	if err != nil {
		return 0, s.wrap("head", key, err)
	}
	return aws.ToInt64(out.ContentLength), nil
}

// Put writes bytes or a local file with one PUT (S3 checks the sha256 it
// is sent), or copies an S3 object server-side. Compression is refused:
// it would mean downloading an export to upload it again.
func (s *Store) Put(ctx context.Context, key string, src distribute.Source) error {
	if src.Gzip {
		return fmt.Errorf("put s3://%s/%s: compressing on the way is not done in S3", s.Bucket, key)
	}
	meta := objectMeta(key)
	switch {
	case src.Object != "":
		return s.copy(ctx, key, src.Object, meta)
	case src.File != "":
		f, err := os.Open(src.File)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		return s.put(ctx, key, f, fi.Size(), h.Sum(nil), meta)
	}
	sum := sha256.Sum256(src.Bytes)
	return s.put(ctx, key, bytes.NewReader(src.Bytes), int64(len(src.Bytes)), sum[:], meta)
}

type meta struct{ contentType, cacheControl string }

// objectMeta is what a file is served with: the download handler's types,
// immutable files under images/, revalidated streams files.
func objectMeta(key string) meta {
	m := meta{contentType: distribute.ContentType(key), cacheControl: "public, max-age=31536000, immutable"}
	if key == distribute.IndexPath || key == distribute.IndexPath+distribute.SigSuffix {
		m.cacheControl = "public, max-age=60"
	}
	return m
}

func (s *Store) put(ctx context.Context, key string, body io.Reader, size int64, sum []byte, m meta) error {
	_, err := s.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &s.Bucket, Key: &key, Body: body, ContentLength: aws.Int64(size),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
		ContentType:    aws.String(m.contentType), CacheControl: aws.String(m.cacheControl),
	})
	if err != nil {
		return s.wrap("put", key, err)
	}
	return nil
}

// copy copies s3://bucket/key to key, pinned to the source's ETag so a
// source replaced meanwhile fails the copy instead of mixing versions.
func (s *Store) copy(ctx context.Context, key, loc string, m meta) error {
	sb, sk, ok := strings.Cut(strings.TrimPrefix(loc, "s3://"), "/")
	if !ok || !strings.HasPrefix(loc, "s3://") || sk == "" {
		return fmt.Errorf("copy %s: want s3://bucket/key", loc)
	}
	head, err := s.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &sb, Key: &sk})
	if err != nil {
		return fmt.Errorf("copy %s: %w", loc, err)
	}
	size, etag := aws.ToInt64(head.ContentLength), aws.ToString(head.ETag)
	source := sb + "/" + sk
	limit := s.CopyLimit
	if limit <= 0 {
		limit = maxCopy
	}
	if size <= limit {
		_, err := s.S3.CopyObject(ctx, &s3.CopyObjectInput{
			Bucket: &s.Bucket, Key: &key, CopySource: aws.String(source), CopySourceIfMatch: aws.String(etag),
			MetadataDirective: s3types.MetadataDirectiveReplace,
			ContentType:       aws.String(m.contentType), CacheControl: aws.String(m.cacheControl),
		})
		if err != nil {
			return fmt.Errorf("copy %s to s3://%s/%s: %w", loc, s.Bucket, key, err)
		}
		return nil
	}
	return s.copyParts(ctx, key, source, etag, size, m)
}

// copyParts copies a large object with UploadPartCopy, aborting the upload
// when a part fails (the lifecycle also aborts uploads left behind).
func (s *Store) copyParts(ctx context.Context, key, source, etag string, size int64, m meta) error {
	part := s.PartSize
	if part <= 0 {
		part = 512 << 20
	}
	up, err := s.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.Bucket, Key: &key, ContentType: aws.String(m.contentType), CacheControl: aws.String(m.cacheControl),
	})
	if err != nil {
		return s.wrap("start a multipart copy to", key, err)
	}
	abort := func(err error) error {
		s.S3.AbortMultipartUpload(context.WithoutCancel(ctx), &s3.AbortMultipartUploadInput{Bucket: &s.Bucket, Key: &key, UploadId: up.UploadId})
		return fmt.Errorf("copy s3://%s to s3://%s/%s: %w", source, s.Bucket, key, err)
	}
	var parts []s3types.CompletedPart
	for n, off := int32(1), int64(0); off < size; n, off = n+1, off+part {
		end := min(off+part, size) - 1
		out, err := s.S3.UploadPartCopy(ctx, &s3.UploadPartCopyInput{
			Bucket: &s.Bucket, Key: &key, UploadId: up.UploadId, PartNumber: aws.Int32(n),
			CopySource: aws.String(source), CopySourceIfMatch: aws.String(etag),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end)),
		})
		if err != nil {
			return abort(err)
		}
		parts = append(parts, s3types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.CopyPartResult.ETag})
	}
	_, err = s.S3.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.Bucket, Key: &key, UploadId: up.UploadId, MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return abort(err)
	}
	return nil
}

// Streams reads the index and every streams file it names.
func (s *Store) Streams(ctx context.Context) (map[string][]byte, error) {
	cat, err := distribute.LoadCatalog(ctx, fetcher{s}, nil)
	if errors.Is(err, fs.ErrNotExist) {
		if _, herr := s.Size(ctx, distribute.IndexPath); errors.Is(herr, fs.ErrNotExist) {
			return nil, nil // no index yet
		}
	}
	if err != nil {
		return nil, err
	}
	files := cat.Files
	sigs := []string{distribute.IndexPath}
	for _, e := range cat.Index.Index {
		sigs = append(sigs, e.Path)
	}
	for _, p := range sigs {
		data, err := fetcher{s}.Fetch(ctx, p+distribute.SigSuffix, 16<<10)
		if err != nil {
			return nil, err
		}
		files[p+distribute.SigSuffix] = data
	}
	return files, nil
}

// fetcher reads the tree's files for distribute.LoadCatalog.
type fetcher struct{ s *Store }

func (f fetcher) Name() string { return f.s.Name() }

func (f fetcher) Fetch(ctx context.Context, key string, limit int64) ([]byte, error) {
	r, err := f.s.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("s3://%s/%s is larger than %d bytes", f.s.Bucket, key, limit)
	}
	return data, nil
}

// Commit writes the products files (new names: nothing reads them yet),
// then the index's signature, then the index; then it deletes streams
// files neither this index nor the one before it names.
func (s *Store) Commit(ctx context.Context, files map[string][]byte) error {
	previous, _ := s.Streams(ctx) // for what the previous index named
	var later []string
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if p == distribute.IndexPath || p == distribute.IndexPath+distribute.SigSuffix {
			continue
		}
		if err := s.Put(ctx, p, distribute.Source{Bytes: files[p]}); err != nil {
			return err
		}
	}
	later = append(later, distribute.IndexPath+distribute.SigSuffix, distribute.IndexPath)
	for _, p := range later {
		if err := s.Put(ctx, p, distribute.Source{Bytes: files[p]}); err != nil {
			return err
		}
	}
	keep := map[string]bool{}
	for _, set := range []map[string][]byte{files, previous} {
		for p := range set {
			keep[p] = true
		}
	}
	old, err := s.list(ctx, "streams/v1/")
	if err != nil {
		return err
	}
	var gone []string
	for _, p := range old {
		if !keep[p] {
			gone = append(gone, p)
		}
	}
	return s.remove(ctx, gone)
}

func (s *Store) List(ctx context.Context) ([]string, error) { return s.list(ctx, "images/") }

func (s *Store) list(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(s.S3, &s3.ListObjectsV2Input{Bucket: &s.Bucket, Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.Bucket, prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, aws.ToString(o.Key))
		}
	}
	return out, nil
}

func (s *Store) Remove(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if !strings.HasPrefix(k, "images/") {
			return fmt.Errorf("remove %q: not a file under images/", k)
		}
	}
	return s.remove(ctx, keys)
}

// remove deletes keys, 1000 per request.
func (s *Store) remove(ctx context.Context, keys []string) error {
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		var objs []s3types.ObjectIdentifier
		for _, k := range keys[:n] {
			objs = append(objs, s3types.ObjectIdentifier{Key: aws.String(k)})
		}
		out, err := s.S3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &s.Bucket, Delete: &s3types.Delete{Objects: objs, Quiet: aws.Bool(true)}})
		if err != nil {
			return fmt.Errorf("delete from s3://%s: %w", s.Bucket, err)
		}
		if len(out.Errors) > 0 {
			e := out.Errors[0]
			return fmt.Errorf("delete s3://%s/%s: %s: %s (and %d more)", s.Bucket, aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message), len(out.Errors)-1)
		}
		keys = keys[n:]
	}
	return nil
}

// Invalidate drops CloudFront's copies of paths in the project's download
// distribution. token (the index's sha256) names the invalidation, so a
// rerun for the same index does not make a second one. Without a
// distribution (the stacks are not deployed yet) there is nothing cached
// and nothing to do.
func (s *Store) Invalidate(ctx context.Context, paths []string, token string) (string, error) {
	if s.CloudFront == nil {
		return "", nil
	}
	id, err := FindDistribution(ctx, s.CloudFront, s.Project)
	if err != nil || id == "" {
		if id == "" && err == nil {
			s.Log.Warn("no CloudFront distribution of the downloads: nothing to invalidate (deploy it with kiln distribution deploy)", "project", s.Project)
		}
		return "", err
	}
	ref := "kiln-" + token[:min(len(token), 32)]
	out, err := s.CloudFront.CreateInvalidation(ctx, &cloudfront.CreateInvalidationInput{
		DistributionId: aws.String(id),
		InvalidationBatch: &cftypes.InvalidationBatch{
			CallerReference: aws.String(ref),
			Paths:           &cftypes.Paths{Quantity: aws.Int32(int32(len(paths))), Items: paths},
		},
	})
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "InvalidationBatchAlreadyExists" {
		return ref, nil // made by an earlier attempt for this index
	}
	if err != nil {
		return "", fmt.Errorf("invalidate %v in CloudFront distribution %s: %w", paths, id, err)
	}
	inv := aws.ToString(out.Invalidation.Id)
	s.Log.Info("CloudFront invalidation", "distribution", id, "invalidation", inv, "paths", paths)
	return inv, nil
}

// FindDistribution returns the id of the CloudFront distribution tagged
// as project's downloads, or "" when there is none.
func FindDistribution(ctx context.Context, c *cloudfront.Client, project string) (string, error) {
	p := cloudfront.NewListDistributionsPaginator(c, &cloudfront.ListDistributionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list CloudFront distributions: %w", err)
		}
		if page.DistributionList == nil {
			break
		}
		for _, d := range page.DistributionList.Items {
			tags, err := c.ListTagsForResource(ctx, &cloudfront.ListTagsForResourceInput{Resource: d.ARN})
			if err != nil {
				return "", fmt.Errorf("tags of CloudFront distribution %s: %w", aws.ToString(d.Id), err)
			}
			m := map[string]string{}
			if tags.Tags != nil {
				for _, t := range tags.Tags.Items {
					m[aws.ToString(t.Key)] = aws.ToString(t.Value)
				}
			}
			if m[TagProject] == project && m[TagComponent] == Component {
				return aws.ToString(d.Id), nil
			}
		}
	}
	return "", nil
}
