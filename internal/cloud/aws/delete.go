package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/kiln-images/kiln/internal/cloud"
)

// DeleteImage deregisters the image and deletes its snapshots. It asks
// EC2 to delete them with the image (DeleteAssociatedSnapshots) and then
// deletes the ones it knew about itself, since not every endpoint honours
// the flag; a snapshot still held for a moment after deregistration is
// retried briefly. Deleting an absent image succeeds.
func (b *Backend) DeleteImage(ctx context.Context, region, id string) error {
	if err := b.checkLocation(ctx, region); err != nil {
		return err
	}
	c, err := b.clients.region(region)
	if err != nil {
		return err
	}
	im, err := b.describeImage(ctx, region, id)
	if errors.Is(err, cloud.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete image: %w", err)
	}
	if err := b.deregister(ctx, c, id); err != nil {
		return err
	}
	for _, snap := range snapshotIDs(im) {
		if err := b.deleteSnapshotRetry(ctx, c, snap); err != nil {
			return fmt.Errorf("delete image %s in %s: %w", id, region, err)
		}
	}
	b.log.Info("image deleted", "region", region, "image", id)
	return nil
}

func (b *Backend) deregister(ctx context.Context, c *regional, id string) error {
	_, err := c.ec2.DeregisterImage(ctx, &ec2.DeregisterImageInput{
		ImageId:                   aws.String(id),
		DeleteAssociatedSnapshots: aws.Bool(true),
	})
	if err = classify(err); err != nil && !errors.Is(err, cloud.ErrNotFound) {
		return fmt.Errorf("deregister %s in %s: %w", id, c.region, err)
	}
	return nil
}

// deleteSnapshotRetry deletes a snapshot, treating absent as done and
// retrying while something still uses it.
func (b *Backend) deleteSnapshotRetry(ctx context.Context, c *regional, id string) error {
	return cloud.Retry(ctx, 6, max(b.opts.pollInterval/5, 10*time.Millisecond), b.opts.pollMax, func(ctx context.Context) error {
		return deleteSnapshot(ctx, c, id)
	})
}

func deleteSnapshot(ctx context.Context, c *regional, id string) error {
	_, err := c.ec2.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: aws.String(id)})
	if err = classify(err); err != nil && !errors.Is(err, cloud.ErrNotFound) {
		return fmt.Errorf("delete snapshot %s in %s: %w", id, c.region, err)
	}
	return nil
}
