package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

var _ cloud.UsageChecker = (*Backend)(nil)

// usageAPI is the part of EC2 that ImagesInUse reads.
type usageAPI interface {
	ec2.DescribeInstancesAPIClient
	ec2.DescribeLaunchTemplatesAPIClient
	ec2.DescribeLaunchTemplateVersionsAPIClient
}

// ImagesInUse maps the ids of the images that something in region uses to
// a description of the first user found: instances that are pending,
// running, stopping or stopped (a stopped instance starts again from its
// root volume, but is still one a person will relaunch from the same
// image), and every version of every launch template, not only the default
// and latest ones, since an Auto Scaling group or fleet can pin any
// version. Every list is paged.
//
// Launch template data that names its image through an SSM parameter
// ("resolve:ssm:...") is not resolved: kiln publishes such parameters only
// for images a channel manifest references, which prune keeps anyway.
func (b *Backend) ImagesInUse(ctx context.Context, region string) (map[string]string, error) {
	c, err := b.clients.region(region)
	if err != nil {
		return nil, err
	}
	used, err := imagesInUse(ctx, c.ec2)
	if err != nil {
		return nil, fmt.Errorf("images in use in %s: %w", region, err)
	}
	return used, nil
}

func imagesInUse(ctx context.Context, api usageAPI) (map[string]string, error) {
	users := map[string][]string{} // image id -> users, in the order found
	add := func(image, user string) {
		if strings.HasPrefix(image, "ami-") {
			users[image] = append(users[image], user)
		}
	}
	ip := ec2.NewDescribeInstancesPaginator(api, &ec2.DescribeInstancesInput{
		Filters:    []ec2types.Filter{filter("instance-state-name", liveStates...)},
		MaxResults: aws.Int32(1000),
	})
	for ip.HasMorePages() {
		page, err := ip.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances: %w", classify(err))
		}
		for _, r := range page.Reservations {
			for _, inst := range r.Instances {
				add(aws.ToString(inst.ImageId), fmt.Sprintf("instance %s (%s)", aws.ToString(inst.InstanceId), instanceState(inst)))
			}
		}
	}

	var templates []string
	tp := ec2.NewDescribeLaunchTemplatesPaginator(api, &ec2.DescribeLaunchTemplatesInput{MaxResults: aws.Int32(200)})
	for tp.HasMorePages() {
		page, err := tp.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe launch templates: %w", classify(err))
		}
		for _, lt := range page.LaunchTemplates {
			templates = append(templates, aws.ToString(lt.LaunchTemplateId))
		}
	}
	for _, id := range templates {
		vp := ec2.NewDescribeLaunchTemplateVersionsPaginator(api, &ec2.DescribeLaunchTemplateVersionsInput{
			LaunchTemplateId: aws.String(id),
			MaxResults:       aws.Int32(200),
		})
		for vp.HasMorePages() {
			page, err := vp.NextPage(ctx)
			if err != nil {
				if err = classify(err); errors.Is(err, cloud.ErrNotFound) {
					break // deleted since it was listed
				}
				return nil, fmt.Errorf("describe versions of launch template %s: %w", id, err)
			}
			for _, v := range page.LaunchTemplateVersions {
				if v.LaunchTemplateData == nil {
					continue
				}
				add(aws.ToString(v.LaunchTemplateData.ImageId), fmt.Sprintf("launch template %s (%s) version %d",
					aws.ToString(v.LaunchTemplateName), id, aws.ToInt64(v.VersionNumber)))
			}
		}
	}

	out := make(map[string]string, len(users))
	for image, us := range users {
		us = slices.Compact(us)
		out[image] = us[0]
		if len(us) > 1 {
			out[image] += fmt.Sprintf(" and %d more", len(us)-1)
		}
	}
	return out, nil
}

// SnapshotUsers maps each snapshot behind one of the account's images in
// region to the images it backs, from one paged scan of the images (EC2's
// block-device-mapping.snapshot-id filter would do it per snapshot, but
// not every endpoint answers it).
func (b *Backend) SnapshotUsers(ctx context.Context, region string) (map[string][]string, error) {
	c, err := b.clients.region(region)
	if err != nil {
		return nil, err
	}
	imgs, err := describeImages(ctx, c.ec2, []string{"self"}, cloud.Filter{})
	if err != nil {
		return nil, fmt.Errorf("images behind snapshots in %s: %w", region, err)
	}
	users := map[string][]string{}
	for _, im := range imgs {
		if im.State == ec2types.ImageStateDeregistered {
			continue
		}
		for _, s := range snapshotIDs(im) {
			users[s] = append(users[s], aws.ToString(im.ImageId))
		}
	}
	return users, nil
}
