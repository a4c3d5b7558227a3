package awsrelease

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

// Verify checks, straight in moto, that a release did its job: every
// region holds exactly one image of the account's own, available and
// public, and no instance is left. Both tools end in this state (kiln
// removes its candidate; Packer's build-region image is its release), so
// one check serves both. It returns the image id per region.
func Verify(ctx context.Context, motoURL string, regions []string) (map[string]string, error) {
	ids := map[string]string{}
	var problems []string
	for _, region := range regions {
		c := ec2.NewFromConfig(awstest.Config(motoURL, region))
		out, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", region, err)
		}
		if len(out.Images) != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d images, want 1", region, len(out.Images)))
			continue
		}
		im := out.Images[0]
		id := aws.ToString(im.ImageId)
		ids[region] = id
		if im.State != ec2types.ImageStateAvailable || !aws.ToBool(im.Public) {
			problems = append(problems, fmt.Sprintf("%s: %s is %s, public %v", region, id, im.State, aws.ToBool(im.Public)))
		}
		insts, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{{
			Name:   aws.String("instance-state-name"),
			Values: []string{"pending", "running", "stopping", "stopped"},
		}}})
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", region, err)
		}
		for _, r := range insts.Reservations {
			for _, i := range r.Instances {
				problems = append(problems, fmt.Sprintf("%s: instance %s left %s", region, aws.ToString(i.InstanceId), i.State.Name))
			}
		}
	}
	if len(problems) > 0 {
		return ids, fmt.Errorf("the release is incomplete:\n  %s", strings.Join(problems, "\n  "))
	}
	return ids, nil
}
