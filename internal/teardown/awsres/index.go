package awsres

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/teardown"
)

// Tagged lists what the tag index holds for tags in region, of every
// type, and confirms each entry with its own service: the index keeps
// entries of deleted resources for an hour or more, and those are
// returned as stale. Entries of types kiln has no describe for come back
// unconfirmed.
func (a *Account) Tagged(ctx context.Context, region string, tags map[string]string) ([]teardown.Indexed, []string, error) {
	c := a.region(region)
	mappings, err := c.tagged(ctx, tags, nil)
	if err != nil {
		return nil, nil, err
	}
	var found []teardown.Indexed
	var stale []string
	for _, m := range mappings {
		typ, id, ok := parseARN(m.arn)
		if !ok {
			found = append(found, teardown.Indexed{Resource: deploy.Resource{Type: arnType(m.arn), ID: m.arn, Region: region, Tags: m.tags}, ARN: m.arn})
			continue
		}
		exists, err := c.exists(ctx, typ, id)
		if errors.Is(err, cloud.ErrInvalid) {
			found = append(found, teardown.Indexed{Resource: deploy.Resource{Type: typ, ID: id, Region: region, Tags: m.tags}, ARN: m.arn})
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if !exists {
			stale = append(stale, m.arn)
			continue
		}
		found = append(found, teardown.Indexed{Resource: deploy.Resource{Type: typ, ID: id, Region: region, Tags: m.tags}, ARN: m.arn, Confirmed: true})
	}
	return found, stale, nil
}

// arnType is an ARN's service and resource type, "service:type".
func arnType(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return "unknown"
	}
	t, _, _ := strings.Cut(parts[5], "/")
	t, _, _ = strings.Cut(t, ":")
	return parts[2] + ":" + t
}

// existsCore confirms the types the backend's inventory knows.
func (c *clients) existsCore(ctx context.Context, typ, id string) (bool, error) {
	var err error
	switch cloud.Kind(typ) {
	case cloud.KindSnapshot:
		var out *ec2.DescribeSnapshotsOutput
		out, err = c.ec2.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}})
		if err == nil {
			return len(out.Snapshots) > 0, nil
		}
	case cloud.KindVolume:
		var out *ec2.DescribeVolumesOutput
		out, err = c.ec2.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
		if err == nil {
			return slices.ContainsFunc(out.Volumes, func(v ec2types.Volume) bool { return v.State != ec2types.VolumeStateDeleted }), nil
		}
	case cloud.KindInstance:
		var out *ec2.DescribeInstancesOutput
		out, err = c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		if err == nil {
			for _, r := range out.Reservations {
				for _, i := range r.Instances {
					if i.State != nil && i.State.Name != ec2types.InstanceStateNameTerminated {
						return true, nil
					}
				}
			}
			return false, nil
		}
	case cloud.KindImage:
		var out *ec2.DescribeImagesOutput
		out, err = c.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{id}})
		if err == nil {
			return slices.ContainsFunc(out.Images, func(i ec2types.Image) bool { return i.State != ec2types.ImageStateDeregistered }), nil
		}
	case cloud.KindSecurityGroup:
		_, err = c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{id}})
	case cloud.KindStack:
		var out *cloudformation.DescribeStacksOutput
		out, err = c.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(id)})
		if err == nil {
			return slices.ContainsFunc(out.Stacks, func(s cfntypes.Stack) bool { return s.StackStatus != cfntypes.StackStatusDeleteComplete }), nil
		}
	case cloud.KindParameter:
		_, err = c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(id)})
	default:
		return false, cloud.Mark(errors.New("no describe for "+typ), cloud.ErrInvalid)
	}
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, wrap("confirm "+typ, id, err)
	}
	return true, nil
}
