package aws

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// tempName names a build's key pair, security group and stack after its
// token, so a rerun finds them by name.
func tempName(token string) string { return "kiln-" + token }

// ensureKeyPair creates the build's key pair unless it exists. Nothing logs
// in with it (provisioning runs from user data); it is there so that an
// operator can attach to a stuck build. The private key is discarded.
func ensureKeyPair(ctx context.Context, c *regional, name string, tags map[string]string) error {
	out, err := c.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{filter("key-name", name)}})
	if err != nil {
		return fmt.Errorf("look up key pair %s in %s: %w", name, c.region, classify(err))
	}
	if len(out.KeyPairs) > 0 {
		return nil
	}
	_, err = c.ec2.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{
		KeyName:           aws.String(name),
		KeyType:           ec2types.KeyTypeEd25519,
		TagSpecifications: tagSpecs(tags, ec2types.ResourceTypeKeyPair),
	})
	if err != nil && !isCode(err, "InvalidKeyPair.Duplicate") {
		return fmt.Errorf("create key pair %s in %s: %w", name, c.region, classify(err))
	}
	return nil
}

// vpcFor returns the VPC of backend.aws.subnet_id, or the region's default
// VPC.
func (b *Backend) vpcFor(ctx context.Context, c *regional) (string, error) {
	if b.cfg.SubnetID != "" {
		out, err := c.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{b.cfg.SubnetID}})
		if err != nil {
			return "", fmt.Errorf("backend.aws.subnet_id %q in %s: %w", b.cfg.SubnetID, c.region, classify(err))
		}
		if len(out.Subnets) == 0 {
			return "", cloud.Mark(fmt.Errorf("backend.aws.subnet_id %q: no such subnet in %s", b.cfg.SubnetID, c.region), cloud.ErrNotFound)
		}
		return aws.ToString(out.Subnets[0].VpcId), nil
	}
	out, err := c.ec2.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{filter("is-default", "true")}})
	if err != nil {
		return "", fmt.Errorf("find the default VPC in %s: %w", c.region, classify(err))
	}
	if len(out.Vpcs) == 0 {
		return "", cloud.Mark(fmt.Errorf("%s has no default VPC: set backend.aws.subnet_id", c.region), cloud.ErrInvalid)
	}
	return aws.ToString(out.Vpcs[0].VpcId), nil
}

// ensureSecurityGroup returns the build's security group, creating it
// unless it exists. It has no inbound rules: the build needs none, and the
// default outbound rule lets provisioning download packages.
func ensureSecurityGroup(ctx context.Context, c *regional, name, vpc string, tags map[string]string) (string, error) {
	if id, ok, err := groupByName(ctx, c, name); err != nil || ok {
		return id, err
	}
	out, err := c.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
		GroupName:         aws.String(name),
		Description:       aws.String("kiln build instance: no inbound access"),
		VpcId:             aws.String(vpc),
		TagSpecifications: tagSpecs(tags, ec2types.ResourceTypeSecurityGroup),
	})
	if isCode(err, "InvalidGroup.Duplicate") {
		if id, ok, err := groupByName(ctx, c, name); err != nil || ok {
			return id, err
		}
	}
	if err != nil {
		return "", fmt.Errorf("create security group %s in %s: %w", name, c.region, classify(err))
	}
	return aws.ToString(out.GroupId), nil
}

func groupByName(ctx context.Context, c *regional, name string) (string, bool, error) {
	out, err := c.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{
		Filters: []ec2types.Filter{filter("group-name", name)},
	})
	if err != nil {
		return "", false, fmt.Errorf("look up security group %s in %s: %w", name, c.region, classify(err))
	}
	if len(out.SecurityGroups) == 0 {
		return "", false, nil
	}
	return aws.ToString(out.SecurityGroups[0].GroupId), true, nil
}

// removeBuildResources removes whatever a build with token left: its
// stack, instance, key pair and security group, each found by name or
// tag, so it also cleans up after an attempt that crashed.
func (b *Backend) removeBuildResources(ctx context.Context, c *regional, token string) error {
	name := tempName(token)
	var errs []error
	if b.cfg.UseStack {
		if err := b.deleteStack(ctx, c, name); err != nil {
			errs = append(errs, err)
		}
	}
	insts, err := describeInstances(ctx, c, []ec2types.Filter{
		filter("tag:"+cloud.TagToken, token),
		filter("instance-state-name", slices.Concat(liveStates, []string{"shutting-down"})...),
	})
	if err != nil {
		errs = append(errs, err)
	}
	for _, inst := range insts {
		if err := b.terminate(ctx, c, aws.ToString(inst.InstanceId)); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := c.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(name)}); err != nil {
		if err = classify(err); !errors.Is(err, cloud.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete key pair %s in %s: %w", name, c.region, err))
		}
	}
	if id, ok, err := groupByName(ctx, c, name); err != nil {
		errs = append(errs, err)
	} else if ok {
		if err := b.deleteGroupRetry(ctx, c, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteGroupRetry deletes a security group, retrying while a terminating
// instance's network interface still holds it (DependencyViolation).
func (b *Backend) deleteGroupRetry(ctx context.Context, c *regional, id string) error {
	return b.poll(ctx, fmt.Sprintf("security group %s in %s to be deletable", id, c.region), 10*time.Minute, func(ctx context.Context) (bool, error) {
		err := deleteGroup(ctx, c, id)
		return err == nil, err
	})
}

func deleteGroup(ctx context.Context, c *regional, id string) error {
	_, err := c.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
	if err = classify(err); err != nil && !errors.Is(err, cloud.ErrNotFound) {
		return fmt.Errorf("delete security group %s in %s: %w", id, c.region, err)
	}
	return nil
}
