package aws

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// exportFormats maps kiln's export formats to EC2's disk image formats.
var exportFormats = map[string]ec2types.DiskImageFormat{
	"vmdk": ec2types.DiskImageFormatVmdk,
	"vhd":  ec2types.DiskImageFormatVhd,
	"raw":  ec2types.DiskImageFormatRaw,
}

// defaultExportRole is the service role VM Import/Export uses unless
// backend.aws.export_role_name names another.
const defaultExportRole = "vmimport"

// ExportImage exports the image to backend.aws.export_bucket under
// export_prefix as a VMDK, VHD or raw file, waits for the export task and
// tags the file with in.Tags. The task is tagged with the token, so a
// rerun waits for the same export instead of starting another.
func (b *Backend) ExportImage(ctx context.Context, in cloud.ExportInput) (cloud.Export, error) {
	format, ok := exportFormats[strings.ToLower(in.Format)]
	switch {
	case !ok:
		return cloud.Export{}, cloud.Mark(fmt.Errorf("export %s: format %q: the aws backend exports vmdk, vhd or raw", in.ImageID, in.Format), cloud.ErrInvalid)
	case b.cfg.ExportBucket == "":
		return cloud.Export{}, cloud.Mark(fmt.Errorf("export %s: backend.aws.export_bucket is not set", in.ImageID), cloud.ErrInvalid)
	case in.ImageID == "" || in.Token == "":
		return cloud.Export{}, cloud.Mark(fmt.Errorf("export %q: image id and token are required", in.ImageID), cloud.ErrInvalid)
	case len(in.Tags) > 10:
		return cloud.Export{}, cloud.Mark(fmt.Errorf("export %s: %d tags, S3 allows 10 per object", in.ImageID, len(in.Tags)), cloud.ErrInvalid)
	}
	taskTags := withTags(in.Tags, map[string]string{cloud.TagToken: in.Token})
	if err := checkTags(taskTags); err != nil {
		return cloud.Export{}, fmt.Errorf("export %s: %w", in.ImageID, err)
	}
	if err := b.checkLocation(ctx, in.Region); err != nil {
		return cloud.Export{}, err
	}
	c, err := b.clients.region(in.Region)
	if err != nil {
		return cloud.Export{}, err
	}
	task, ok, err := exportTaskByToken(ctx, c, in.Token)
	if err != nil {
		return cloud.Export{}, fmt.Errorf("export %s: %w", in.ImageID, err)
	}
	if !ok {
		role := b.cfg.ExportRoleName
		if role == "" {
			role = defaultExportRole
		}
		out, err := c.ec2.ExportImage(ctx, &ec2.ExportImageInput{
			ImageId:         aws.String(in.ImageID),
			DiskImageFormat: format,
			S3ExportLocation: &ec2types.ExportTaskS3LocationRequest{
				S3Bucket: aws.String(b.cfg.ExportBucket),
				S3Prefix: optional(b.cfg.ExportPrefix),
			},
			RoleName:          aws.String(role),
			ClientToken:       aws.String(in.Token),
			Description:       aws.String("kiln export of " + in.ImageID),
			TagSpecifications: tagSpecs(taskTags, ec2types.ResourceTypeExportImageTask),
		})
		if err != nil {
			return cloud.Export{}, fmt.Errorf("export %s in %s to s3://%s/%s: %w", in.ImageID, in.Region, b.cfg.ExportBucket, b.cfg.ExportPrefix, classify(err))
		}
		task.ExportImageTaskId = out.ExportImageTaskId
		b.log.Info("export started", "region", in.Region, "image", in.ImageID, "task", aws.ToString(out.ExportImageTaskId))
	}
	taskID := aws.ToString(task.ExportImageTaskId)
	err = b.poll(ctx, fmt.Sprintf("export task %s of %s in %s to complete", taskID, in.ImageID, in.Region), b.copyTimeout(), func(ctx context.Context) (bool, error) {
		out, err := c.ec2.DescribeExportImageTasks(ctx, &ec2.DescribeExportImageTasksInput{ExportImageTaskIds: []string{taskID}})
		if err != nil {
			return false, classify(err)
		}
		if len(out.ExportImageTasks) == 0 {
			return false, cloud.Mark(fmt.Errorf("export task %s not visible yet", taskID), cloud.ErrNotYet)
		}
		task = out.ExportImageTasks[0]
		switch aws.ToString(task.Status) {
		case "completed":
			return true, nil
		case "deleted", "deleting":
			return false, fmt.Errorf("export task %s of %s failed: %s", taskID, in.ImageID, aws.ToString(task.StatusMessage))
		}
		return false, nil
	})
	if err != nil {
		return cloud.Export{}, err
	}
	bucket, prefix := b.cfg.ExportBucket, b.cfg.ExportPrefix
	if loc := task.S3ExportLocation; loc != nil {
		bucket, prefix = aws.ToString(loc.S3Bucket), aws.ToString(loc.S3Prefix)
	}
	ext := strings.ToLower(in.Format)
	key := prefix + taskID + "." + ext
	if len(in.Tags) > 0 {
		_, err := c.s3.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
			Bucket:  aws.String(bucket),
			Key:     aws.String(key),
			Tagging: &s3types.Tagging{TagSet: s3Tags(in.Tags)},
		})
		if err != nil {
			return cloud.Export{}, fmt.Errorf("tag exported file s3://%s/%s: %w", bucket, key, classify(err))
		}
	}
	e := cloud.Export{Location: "s3://" + bucket + "/" + key, Format: ext}
	// Size, and the sha256 when S3 keeps one for the whole object (an
	// export written in parts has none: reading it back would cost a
	// download of the disk).
	head, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), ChecksumMode: s3types.ChecksumModeEnabled,
	})
	if err != nil {
		return cloud.Export{}, fmt.Errorf("read back exported file %s: %w", e.Location, classify(err))
	}
	e.Size = aws.ToInt64(head.ContentLength)
	if sum, err := base64.StdEncoding.DecodeString(aws.ToString(head.ChecksumSHA256)); err == nil && len(sum) == sha256.Size &&
		head.ChecksumType != s3types.ChecksumTypeComposite {
		e.SHA256 = hex.EncodeToString(sum)
	}
	return e, nil
}

// exportTaskByToken finds an export task tagged with token that has not
// failed.
func exportTaskByToken(ctx context.Context, c *regional, token string) (ec2types.ExportImageTask, bool, error) {
	p := ec2.NewDescribeExportImageTasksPaginator(c.ec2, &ec2.DescribeExportImageTasksInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return ec2types.ExportImageTask{}, false, fmt.Errorf("list export tasks in %s: %w", c.region, classify(err))
		}
		for _, t := range page.ExportImageTasks {
			s := aws.ToString(t.Status)
			if tagMap(t.Tags)[cloud.TagToken] == token && s != "deleted" && s != "deleting" {
				return t, true, nil
			}
		}
	}
	return ec2types.ExportImageTask{}, false, nil
}

func s3Tags(m map[string]string) []s3types.Tag {
	var out []s3types.Tag
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, s3types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return out
}

// splitS3 splits s3://bucket/key.
func splitS3(loc string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(loc, "s3://")
	if ok {
		bucket, key, ok = strings.Cut(rest, "/")
	}
	if !ok || bucket == "" || key == "" {
		return "", "", cloud.Mark(errors.New("export location "+loc+": want s3://bucket/key"), cloud.ErrInvalid)
	}
	return bucket, key, nil
}
