package aws

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// ListImages returns the images the account owns in region that match f.
// It pages through DescribeImages (moto answers in one page, AWS may not).
func (b *Backend) ListImages(ctx context.Context, region string, f cloud.Filter) ([]cloud.Image, error) {
	c, err := b.clients.region(region)
	if err != nil {
		return nil, err
	}
	raw, err := describeImages(ctx, c.ec2, []string{"self"}, f)
	if err != nil {
		return nil, fmt.Errorf("list images in %s: %w", region, err)
	}
	out := make([]cloud.Image, 0, len(raw))
	for _, im := range raw {
		if im.State == ec2types.ImageStateDeregistered {
			continue
		}
		out = append(out, toImage(region, im))
	}
	return out, nil
}

// describeImages pages through DescribeImages. IDs become an image-id
// filter, not ImageIds, so an id that no longer exists drops out of the
// answer instead of failing the whole call.
func describeImages(ctx context.Context, api ec2.DescribeImagesAPIClient, owners []string, f cloud.Filter) ([]ec2types.Image, error) {
	in := &ec2.DescribeImagesInput{Owners: owners, Filters: tagFilters(f.Tags)}
	if len(f.IDs) > 0 {
		in.Filters = append(in.Filters, filter("image-id", f.IDs...))
	}
	var out []ec2types.Image
	p := ec2.NewDescribeImagesPaginator(api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, page.Images...)
	}
	return out, nil
}

// Image returns one image; an absent or deregistered one is ErrNotFound.
func (b *Backend) Image(ctx context.Context, region, id string) (cloud.Image, error) {
	im, err := b.describeImage(ctx, region, id)
	if err != nil {
		return cloud.Image{}, err
	}
	return toImage(region, im), nil
}

// describeImage returns the SDK's description of one image, for callers
// that need fields cloud.Image leaves out (state reason, root device).
func (b *Backend) describeImage(ctx context.Context, region, id string) (ec2types.Image, error) {
	if id == "" {
		return ec2types.Image{}, cloud.Mark(fmt.Errorf("describe image in %s: empty image id", region), cloud.ErrInvalid)
	}
	c, err := b.clients.region(region)
	if err != nil {
		return ec2types.Image{}, err
	}
	out, err := c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		ImageIds:          []string{id},
		IncludeDeprecated: aws.Bool(true),
	})
	if err != nil {
		return ec2types.Image{}, fmt.Errorf("describe image %s in %s: %w", id, region, classify(err))
	}
	for _, im := range out.Images {
		if aws.ToString(im.ImageId) == id && im.State != ec2types.ImageStateDeregistered {
			return im, nil
		}
	}
	return ec2types.Image{}, cloud.Mark(fmt.Errorf("image %s not found in %s", id, region), cloud.ErrNotFound)
}

// toImage maps an SDK image to cloud.Image.
func toImage(region string, im ec2types.Image) cloud.Image {
	out := cloud.Image{
		ID:           aws.ToString(im.ImageId),
		Region:       region,
		Name:         aws.ToString(im.Name),
		Architecture: string(im.Architecture),
		State:        imageState(im.State),
		Tags:         tagMap(im.Tags),
		Public:       aws.ToBool(im.Public),
		Created:      parseTime(aws.ToString(im.CreationDate)),
		Deprecation:  parseTime(aws.ToString(im.DeprecationTime)),
	}
	for _, m := range im.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		if id := aws.ToString(m.Ebs.SnapshotId); id != "" {
			out.Snapshots = append(out.Snapshots, id)
		}
		out.Size += int64(aws.ToInt32(m.Ebs.VolumeSize)) << 30
	}
	return out
}

// imageState maps EC2 image states to cloud's; states cloud does not name
// pass through as they are.
func imageState(s ec2types.ImageState) cloud.ImageState {
	switch s {
	case ec2types.ImageStateAvailable:
		return cloud.StateAvailable
	case ec2types.ImageStatePending, ec2types.ImageStateTransient:
		return cloud.StatePending
	case ec2types.ImageStateFailed, ec2types.ImageStateError, ec2types.ImageStateInvalid:
		return cloud.StateFailed
	}
	return cloud.ImageState(s)
}

// parseTime reads EC2's timestamps (RFC 3339, with or without fractional
// seconds); an empty or unreadable one is the zero time.
func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// TagImage adds or replaces tags on an image, in one CreateTags: EC2
// refuses to tag an image that does not exist (InvalidAMIID.NotFound,
// ErrNotFound).
func (b *Backend) TagImage(ctx context.Context, region, id string, tags map[string]string) error {
	if err := checkTags(tags); err != nil {
		return fmt.Errorf("tag image %s in %s: %w", id, region, err)
	}
	if err := b.checkLocation(ctx, region); err != nil {
		return err
	}
	c, err := b.clients.region(region)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		_, err := b.describeImage(ctx, region, id)
		return err
	}
	if _, err := c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: ec2Tags(tags)}); err != nil {
		return fmt.Errorf("tag image %s in %s: %w", id, region, classify(err))
	}
	return nil
}
