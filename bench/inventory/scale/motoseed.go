package scale

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

// SeedMoto fills each region of the moto at endpoint with n images
// described by spec, tagged at creation, each with the snapshot moto makes
// for it: one instance per region, one CreateImage per image. It returns
// the image ids per region, in spec order.
func SeedMoto(ctx context.Context, endpoint string, regions []string, n int, spec func(region string, i int) ImageSpec) (map[string][]string, error) {
	return seedRegions(ctx, regions, func(ctx context.Context, region string) ([]string, error) {
		c := ec2.NewFromConfig(awstest.Config(endpoint, region))
		run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
			ImageId: aws.String("ami-12c6146b"), InstanceType: ec2types.InstanceTypeT3Micro,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		})
		if err != nil {
			return nil, fmt.Errorf("seed %s: %w", region, err)
		}
		inst := run.Instances[0].InstanceId
		out := make([]string, 0, n)
		for i := range n {
			s := spec(region, i)
			keys := make([]string, 0, len(s.Tags))
			for k := range s.Tags {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var tags []ec2types.Tag
			for _, k := range keys {
				tags = append(tags, ec2types.Tag{Key: aws.String(k), Value: aws.String(s.Tags[k])})
			}
			in := &ec2.CreateImageInput{InstanceId: inst, Name: aws.String(s.Name)}
			if len(tags) > 0 {
				in.TagSpecifications = []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeImage, Tags: tags}}
			}
			img, err := c.CreateImage(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("seed %s image %d: %w", region, i, err)
			}
			if s.Public {
				if _, err := c.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
					ImageId:          img.ImageId,
					LaunchPermission: &ec2types.LaunchPermissionModifications{Add: []ec2types.LaunchPermission{{Group: ec2types.PermissionGroupAll}}},
				}); err != nil {
					return nil, fmt.Errorf("seed %s: make %s public: %w", region, aws.ToString(img.ImageId), err)
				}
			}
			out = append(out, aws.ToString(img.ImageId))
		}
		// The instance would count as a kiln asset only if tagged; it is
		// not, but it goes anyway so only images remain.
		if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{aws.ToString(inst)}}); err != nil {
			return nil, fmt.Errorf("seed %s: terminate %s: %w", region, aws.ToString(inst), err)
		}
		return out, nil
	})
}
