package aws

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// resolveBase finds the image a build starts from: base.ami as given, the
// newest available image named like base.name_filter owned by base.owner,
// or the image id held by the SSM parameter base.ssm_parameter (such as
// the public /aws/service/debian/... ones). It must have the build's
// architecture.
func (b *Backend) resolveBase(ctx context.Context, c *regional, useCase string, base config.Base, arch string) (ec2types.Image, error) {
	field := fmt.Sprintf("use_cases.%s.base", useCase)
	var (
		im  ec2types.Image
		err error
	)
	switch {
	case base.AMI != "":
		im, err = b.describeImage(ctx, c.region, base.AMI)
		if err != nil {
			return im, fmt.Errorf("%s.ami %q: %w", field, base.AMI, err)
		}
	case base.NameFilter != "":
		if base.Owner == "" {
			return im, cloud.Mark(fmt.Errorf("%s.name_filter %q needs %s.owner: anyone can publish an image with a matching name",
				field, base.NameFilter, field), cloud.ErrInvalid)
		}
		im, err = newestNamed(ctx, c, base.NameFilter, base.Owner, arch)
		if err != nil {
			return im, fmt.Errorf("%s.name_filter %q (owner %s) in %s: %w", field, base.NameFilter, base.Owner, c.region, err)
		}
	case base.SSMParameter != "":
		out, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(base.SSMParameter)})
		if err != nil {
			return im, fmt.Errorf("%s.ssm_parameter %q in %s: %w", field, base.SSMParameter, c.region, classify(err))
		}
		id := aws.ToString(out.Parameter.Value)
		im, err = b.describeImage(ctx, c.region, id)
		if err != nil {
			return im, fmt.Errorf("%s.ssm_parameter %q names %s: %w", field, base.SSMParameter, id, err)
		}
	default:
		return im, cloud.Mark(fmt.Errorf("%s: set one of ami, name_filter with owner, or ssm_parameter for the aws backend", field), cloud.ErrInvalid)
	}
	if got := string(im.Architecture); arch != "" && got != "" && got != arch {
		return im, cloud.Mark(fmt.Errorf("%s: base image %s in %s is %s, the build is for %s", field, aws.ToString(im.ImageId), c.region, got, arch), cloud.ErrInvalid)
	}
	if imageState(im.State) != cloud.StateAvailable {
		return im, fmt.Errorf("%s: base image %s in %s is %s, not available", field, aws.ToString(im.ImageId), c.region, im.State)
	}
	return im, nil
}

func newestNamed(ctx context.Context, c *regional, pattern, owner, arch string) (ec2types.Image, error) {
	filters := []ec2types.Filter{filter("name", pattern), filter("state", "available")}
	if arch != "" {
		filters = append(filters, filter("architecture", arch))
	}
	var ims []ec2types.Image
	p := ec2.NewDescribeImagesPaginator(c.ec2, &ec2.DescribeImagesInput{Owners: []string{owner}, Filters: filters})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return ec2types.Image{}, classify(err)
		}
		ims = append(ims, page.Images...)
	}
	im, ok, _ := newestLive(ims)
	if !ok {
		return im, cloud.Mark(fmt.Errorf("no available image matches"), cloud.ErrNotFound)
	}
	return im, nil
}

// instanceType is backend.aws.instance_type, or a small type of the
// architecture.
func (b *Backend) instanceType(arch string) string {
	if b.cfg.InstanceType != "" {
		return b.cfg.InstanceType
	}
	if arch == "arm64" {
		return "t4g.micro"
	}
	return "t3.micro"
}

// rootDevice grows the base image's root volume to size bytes when it is
// smaller; nil keeps the image's own.
func rootDevice(base ec2types.Image, size int64) []ec2types.BlockDeviceMapping {
	root := aws.ToString(base.RootDeviceName)
	if size <= 0 || root == "" {
		return nil
	}
	gib := int32((size + 1<<30 - 1) >> 30)
	for _, m := range base.BlockDeviceMappings {
		if aws.ToString(m.DeviceName) != root || m.Ebs == nil {
			continue
		}
		if aws.ToInt32(m.Ebs.VolumeSize) >= gib {
			return nil
		}
		// Without a snapshot id the volume still comes from the image's
		// snapshot; only its size and lifetime change.
		ebs := ec2types.EbsBlockDevice{
			VolumeSize:          aws.Int32(gib),
			VolumeType:          m.Ebs.VolumeType,
			DeleteOnTermination: aws.Bool(true),
		}
		return []ec2types.BlockDeviceMapping{{DeviceName: aws.String(root), Ebs: &ebs}}
	}
	return nil
}
