package aws

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

var _ cloud.AssetTagger = (*Backend)(nil)

// TagAsset adds tags to an existing asset: EC2 resources with CreateTags
// (a key pair by its id, looked up from its name), parameters with SSM's
// AddTagsToResource. Stacks (whose tags CloudFormation sets only through a
// stack update) and exported objects are refused.
func (b *Backend) TagAsset(ctx context.Context, a cloud.Asset, tags map[string]string) error {
	if err := checkTags(tags); err != nil {
		return err
	}
	if err := b.checkLocation(ctx, a.Region); err != nil {
		return err
	}
	c, err := b.clients.region(a.Region)
	if err != nil {
		return err
	}
	id := a.ID
	switch a.Kind {
	case cloud.KindImage, cloud.KindSnapshot, cloud.KindInstance, cloud.KindVolume, cloud.KindSecurityGroup:
	case cloud.KindKeyPair:
		out, err := c.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{a.ID}})
		if err != nil {
			return fmt.Errorf("tag key pair %s in %s: %w", a.ID, a.Region, classify(err))
		}
		if len(out.KeyPairs) != 1 || aws.ToString(out.KeyPairs[0].KeyPairId) == "" {
			return cloud.Mark(fmt.Errorf("tag key pair %s in %s: not found", a.ID, a.Region), cloud.ErrNotFound)
		}
		id = aws.ToString(out.KeyPairs[0].KeyPairId)
	case cloud.KindParameter:
		_, err := c.ssm.AddTagsToResource(ctx, &ssm.AddTagsToResourceInput{
			ResourceType: ssmtypes.ResourceTypeForTaggingParameter, ResourceId: aws.String(a.ID), Tags: ssmTags(tags),
		})
		if err != nil {
			return fmt.Errorf("tag parameter %s in %s: %w", a.ID, a.Region, classify(err))
		}
		return nil
	default:
		return cloud.Mark(fmt.Errorf("%s %s in %s: its tags cannot be changed after creation; delete it by hand or with its run", a.Kind, a.ID, a.Region), cloud.ErrInvalid)
	}
	_, err = c.ec2.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{id}, Tags: ec2Tags(tags)})
	if err != nil {
		return fmt.Errorf("tag %s %s in %s: %w", a.Kind, a.ID, a.Region, classify(err))
	}
	return nil
}
