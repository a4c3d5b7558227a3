package aws

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/kiln-images/kiln/internal/cloud"
)

// DeleteAsset deletes one asset by kind and waits where the deletion is
// asynchronous (instances, stacks). An absent asset is done; a dependency
// that still holds it is an error matching ErrNotYet.
func (b *Backend) DeleteAsset(ctx context.Context, a cloud.Asset) error {
	if a.ID == "" {
		return cloud.Mark(fmt.Errorf("delete %s asset in %s: empty id", a.Kind, a.Region), cloud.ErrInvalid)
	}
	if err := b.checkLocation(ctx, a.Region); err != nil {
		return err
	}
	c, err := b.clients.region(a.Region)
	if err != nil {
		return err
	}
	err = b.deleteAsset(ctx, c, a)
	if errors.Is(err, cloud.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s %s in %s: %w", a.Kind, a.ID, a.Region, err)
	}
	b.log.Info("asset deleted", "kind", a.Kind, "id", a.ID, "region", a.Region)
	return nil
}

func (b *Backend) deleteAsset(ctx context.Context, c *regional, a cloud.Asset) error {
	switch a.Kind {
	case cloud.KindInstance:
		return b.terminate(ctx, c, a.ID)
	case cloud.KindImage:
		return b.deregister(ctx, c, a.ID)
	case cloud.KindSnapshot:
		return deleteSnapshot(ctx, c, a.ID)
	case cloud.KindVolume:
		_, err := c.ec2.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(a.ID)})
		return classify(err)
	case cloud.KindKeyPair:
		_, err := c.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(a.ID)})
		return classify(err)
	case cloud.KindSecurityGroup:
		return deleteGroup(ctx, c, a.ID)
	case cloud.KindStack:
		return b.deleteStack(ctx, c, a.ID)
	case cloud.KindParameter:
		_, err := c.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(a.ID)})
		return classify(err)
	case cloud.KindBuild:
		return b.deleteWorkDir(ctx, a.ID)
	case cloud.KindObject:
		bucket, key, err := splitS3(a.ID)
		if err != nil {
			return err
		}
		return deleteObject(ctx, c, bucket, key)
	case cloud.KindExport:
		bucket, key, err := splitS3(a.ID)
		if err != nil {
			return err
		}
		_, err = c.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		return classify(err)
	}
	return cloud.Mark(fmt.Errorf("kind %q is not an aws asset", a.Kind), cloud.ErrInvalid)
}
