package aws

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// CopyImage copies in.SourceID from in.SourceRegion to in.Region, tagged
// with in.Tags plus kiln:token and kiln:source at creation, encrypted with
// the region's key from backend.aws.kms_keys when one is set. It converges:
// an image in the destination tagged with the same token is returned
// instead of making a second copy (CopyImage's ClientToken does the same on
// AWS, but not every endpoint honours it), as is an image that already has
// the name and the token. The copy may still be pending; see WaitAvailable.
func (b *Backend) CopyImage(ctx context.Context, in cloud.CopyInput) (cloud.Image, error) {
	if err := checkCopyInput(in); err != nil {
		return cloud.Image{}, err
	}
	tags := withTags(in.Tags, map[string]string{cloud.TagToken: in.Token, cloud.TagSource: in.SourceID})
	if err := checkTags(tags); err != nil {
		return cloud.Image{}, fmt.Errorf("copy %s to %s: %w", in.SourceID, in.Region, err)
	}
	if err := b.checkLocation(ctx, in.Region); err != nil {
		return cloud.Image{}, err
	}
	srcAcct, srcRegion := config.SplitLocation(in.SourceRegion)
	dstAcct, dstRegion := config.SplitLocation(in.Region)
	c, err := b.clients.region(in.Region)
	if err != nil {
		return cloud.Image{}, err
	}
	if _, err := b.clients.region(in.SourceRegion); err != nil {
		return cloud.Image{}, err
	}

	if in.Fresh {
		// No earlier attempt: nothing to look for.
	} else if im, ok, err := b.imageByToken(ctx, in.Region, in.Token); err != nil {
		return cloud.Image{}, fmt.Errorf("copy %s to %s: look for an earlier copy: %w", in.SourceID, in.Region, err)
	} else if ok {
		b.log.Debug("copy exists", "region", in.Region, "image", aws.ToString(im.ImageId), "token", in.Token)
		return b.ensureImageTags(ctx, in.Region, im, tags)
	}

	if dstAcct != srcAcct {
		// Another account copies what this one shares with it.
		if err := b.shareForCopy(ctx, in.SourceRegion, in.SourceID, dstAcct); err != nil {
			return cloud.Image{}, fmt.Errorf("copy %s to %s: %w", in.SourceID, in.Region, err)
		}
	}
	name := in.Name
	if name == "" {
		src, err := b.describeImage(ctx, in.SourceRegion, in.SourceID)
		if err != nil {
			return cloud.Image{}, fmt.Errorf("copy %s to %s: %w", in.SourceID, in.Region, err)
		}
		name = aws.ToString(src.Name)
	}
	if in.SourceTags[tagUpload] != "" && in.Region != in.SourceRegion {
		// The build uploaded the disk into this region too.
		im, ok, err := b.copyUploaded(ctx, c, in, name, tags)
		if err != nil {
			return cloud.Image{}, fmt.Errorf("copy %s to %s: %w", in.SourceID, in.Region, err)
		}
		if ok {
			return b.ensureImageTags(ctx, in.Region, im, withTags(tags, map[string]string{tagUpload: in.SourceTags[tagUpload]}))
		}
	}
	req := &ec2.CopyImageInput{
		SourceImageId:     aws.String(in.SourceID),
		SourceRegion:      aws.String(srcRegion),
		Name:              aws.String(name),
		ClientToken:       aws.String(in.Token),
		TagSpecifications: tagSpecs(tags, ec2types.ResourceTypeImage, ec2types.ResourceTypeSnapshot),
	}
	if in.Description != "" {
		req.Description = aws.String(in.Description)
	}
	if key := b.cfg.KMSKeys[dstRegion]; key != "" {
		req.Encrypted = aws.Bool(true)
		req.KmsKeyId = aws.String(key)
	}
	out, err := c.ec2.CopyImage(ctx, req)
	var id string
	switch {
	case err == nil:
		id = aws.ToString(out.ImageId)
	case isCode(err, "InvalidAMIName.Duplicate"):
		im, ok, ferr := b.imageByName(ctx, in.Region, name)
		if ferr != nil {
			return cloud.Image{}, fmt.Errorf("copy %s to %s: name %q is taken; look it up: %w", in.SourceID, in.Region, name, ferr)
		}
		if !ok || tagMap(im.Tags)[cloud.TagToken] != in.Token {
			return cloud.Image{}, cloud.Mark(fmt.Errorf("copy %s to %s: image name %q is already used by %s, which another run made (token %q, want %q)",
				in.SourceID, in.Region, name, aws.ToString(im.ImageId), tagMap(im.Tags)[cloud.TagToken], in.Token), cloud.ErrInvalid)
		}
		id = aws.ToString(im.ImageId)
	default:
		return cloud.Image{}, fmt.Errorf("copy %s from %s to %s: %w", in.SourceID, in.SourceRegion, in.Region, classify(err))
	}
	b.log.Info("copying image", "source", in.SourceID, "from", in.SourceRegion, "to", in.Region, "image", id)
	b.madeHere(in.Region, id)

	im, err := b.describeFresh(ctx, in.Region, id)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("copy %s to %s: %w", in.SourceID, in.Region, err)
	}
	return b.ensureImageTags(ctx, in.Region, im, tags)
}

// shareForCopy lets account acct copy image id in loc: launch permission
// on the image and create-volume permission on its snapshots, which
// CopyImage from another account needs. Sharing again is harmless; the
// shares go with the candidate when publish deletes it.
func (b *Backend) shareForCopy(ctx context.Context, loc, id, acct string) error {
	if err := b.checkLocation(ctx, loc); err != nil {
		return err
	}
	c, err := b.clients.region(loc)
	if err != nil {
		return err
	}
	im, err := b.describeImage(ctx, loc, id)
	if err != nil {
		return fmt.Errorf("share %s with account %s: %w", id, acct, err)
	}
	if _, err := c.ec2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          aws.String(id),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{UserId: aws.String(acct)}}},
	}); err != nil {
		return fmt.Errorf("share %s with account %s: %w", id, acct, classify(err))
	}
	for _, snap := range snapshotIDs(im) {
		if _, err := c.ec2.ModifySnapshotAttribute(ctx, &ec2.ModifySnapshotAttributeInput{
			SnapshotId:    aws.String(snap),
			Attribute:     ec2types.SnapshotAttributeNameCreateVolumePermission,
			OperationType: ec2types.OperationTypeAdd,
			UserIds:       []string{acct},
		}); err != nil {
			return fmt.Errorf("share snapshot %s of %s with account %s: %w", snap, id, acct, classify(err))
		}
	}
	b.log.Info("shared for copy", "image", id, "region", loc, "account", acct, "snapshots", len(snapshotIDs(im)))
	return nil
}

func checkCopyInput(in cloud.CopyInput) error {
	var problem string
	switch {
	case in.SourceID == "":
		problem = "empty source image id"
	case in.SourceRegion == "":
		problem = "empty source region"
	case in.Region == "":
		problem = "empty destination region"
	case in.Token == "":
		problem = "empty token"
	case len(in.Token) > 64:
		problem = fmt.Sprintf("token %q is longer than 64 characters (EC2's client token limit)", in.Token)
	default:
		return nil
	}
	return cloud.Mark(fmt.Errorf("copy image %s: %s", in.SourceID, problem), cloud.ErrInvalid)
}

// describeFresh describes an image that was just made; a read right after
// the create can miss it, so NotFound is retried for a short while.
func (b *Backend) describeFresh(ctx context.Context, region, id string) (ec2types.Image, error) {
	var im ec2types.Image
	err := cloud.Retry(ctx, 6, b.opts.pollInterval, b.opts.pollMax, func(ctx context.Context) error {
		var err error
		im, err = b.describeImage(ctx, region, id)
		if errors.Is(err, cloud.ErrNotFound) {
			return cloud.Mark(err, cloud.ErrNotYet)
		}
		return err
	})
	return im, err
}

// imageByToken finds a live image the account owns in region tagged with
// token. A failed image does not count: a rerun makes a new one.
func (b *Backend) imageByToken(ctx context.Context, region, token string) (ec2types.Image, bool, error) {
	c, err := b.clients.region(region)
	if err != nil {
		return ec2types.Image{}, false, err
	}
	ims, err := describeImages(ctx, c.ec2, []string{"self"}, cloud.Filter{Tags: map[string]string{cloud.TagToken: token}})
	if err != nil {
		return ec2types.Image{}, false, err
	}
	return newestLive(ims)
}

// imageByName finds the image the account owns in region with this name.
func (b *Backend) imageByName(ctx context.Context, region, name string) (ec2types.Image, bool, error) {
	c, err := b.clients.region(region)
	if err != nil {
		return ec2types.Image{}, false, err
	}
	out, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"self"},
		Filters: []ec2types.Filter{filter("name", name)},
	})
	if err != nil {
		return ec2types.Image{}, false, classify(err)
	}
	return newestLive(out.Images)
}

func newestLive(ims []ec2types.Image) (ec2types.Image, bool, error) {
	var best ec2types.Image
	found := false
	for _, im := range ims {
		switch imageState(im.State) {
		case cloud.StateAvailable, cloud.StatePending:
		default:
			continue
		}
		if !found || aws.ToString(im.CreationDate) > aws.ToString(best.CreationDate) {
			best, found = im, true
		}
	}
	return best, found, nil
}

// ensureImageTags makes sure tags landed on the image and its snapshots.
// EC2 applies a create call's TagSpecifications to the image and its
// snapshots together, with the call, so an image that carries every tag
// says its snapshots do too. Some endpoints ignore them (moto's
// CopyImage), and an image found by a rerun may predate a tag: then the
// image and its snapshots get the tags in one CreateTags.
func (b *Backend) ensureImageTags(ctx context.Context, region string, im ec2types.Image, tags map[string]string) (cloud.Image, error) {
	c, err := b.clients.region(region)
	if err != nil {
		return cloud.Image{}, err
	}
	id := aws.ToString(im.ImageId)
	miss := missingTags(tagMap(im.Tags), tags)
	if len(miss) == 0 {
		return toImage(region, im), nil
	}
	// The snapshots' own tags are not known; writing every wanted pair
	// again changes nothing where one is already there.
	resources := append([]string{id}, snapshotIDs(im)...)
	b.log.Debug("adding tags the create call did not apply", "region", region, "image", id, "resources", len(resources), "missing on image", len(miss))
	if _, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: resources, Tags: ec2Tags(tags)}); err != nil {
		return cloud.Image{}, fmt.Errorf("tag image %s and its snapshots in %s: %w", id, region, classify(err))
	}
	im.Tags = ec2Tags(withTags(tagMap(im.Tags), tags))
	return toImage(region, im), nil
}

func snapshotIDs(im ec2types.Image) []string {
	var ids []string
	for _, m := range im.BlockDeviceMappings {
		if m.Ebs != nil && aws.ToString(m.Ebs.SnapshotId) != "" {
			ids = append(ids, aws.ToString(m.Ebs.SnapshotId))
		}
	}
	return ids
}
