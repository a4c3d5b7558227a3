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

// tempState is what a build finds before it makes its temporary
// resources: the VPC for the group, and what an earlier attempt left.
type tempState struct {
	vpc      string
	instance string // a live build instance of the token, or ""
	keyPair  bool   // the key pair exists
	group    string // the security group's id, or ""
}

// lookTemp asks the questions of tempState at once. With use_stack only
// the VPC is asked: the stack is looked up by name when it is made; when
// fresh (no earlier attempt can exist) too.
func (b *Backend) lookTemp(ctx context.Context, c *regional, token string, fresh bool) (tempState, error) {
	name := tempName(token)
	var t tempState
	fns := []func() error{func() error {
		var err error
		t.vpc, err = b.vpcFor(ctx, c)
		return err
	}}
	if !b.cfg.UseStack && !fresh {
		fns = append(fns, func() error {
			inst, ok, err := instanceByToken(ctx, c, token)
			if ok {
				t.instance = aws.ToString(inst.InstanceId)
			}
			return err
		}, func() error {
			var err error
			t.keyPair, err = keyPairExists(ctx, c, name)
			return err
		}, func() error {
			var err error
			t.group, _, err = groupByName(ctx, c, name)
			return err
		})
	}
	return t, together(fns...)
}

func keyPairExists(ctx context.Context, c *regional, name string) (bool, error) {
	out, err := c.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{Filters: []ec2types.Filter{filter("key-name", name)}})
	if err != nil {
		return false, fmt.Errorf("look up key pair %s in %s: %w", name, c.region, classify(err))
	}
	return len(out.KeyPairs) > 0, nil
}

// createKeyPair creates the build's key pair; one that exists already
// (made by an earlier attempt) will do. Nothing logs in with it
// (provisioning runs from user data); it is there so that an operator can
// attach to a stuck build. The private key is discarded.
func createKeyPair(ctx context.Context, c *regional, name string, tags map[string]string) error {
	_, err := c.ec2.CreateKeyPair(ctx, &ec2.CreateKeyPairInput{
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

// createSecurityGroup creates the build's security group and returns its
// id; if an earlier attempt made it, that one is returned. It has no
// inbound rules: the build needs none, and the default outbound rule lets
// provisioning download packages.
func createSecurityGroup(ctx context.Context, c *regional, name, vpc string, tags map[string]string) (string, error) {
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
// tag, so it also cleans up after an attempt that crashed; what made
// names is not looked up first. The key pair goes at once (EC2 lets a
// running instance keep one that is deleted); the group only after the
// instances that use it are gone.
func (b *Backend) removeBuildResources(ctx context.Context, c *regional, token string, made tempMade) error {
	name := tempName(token)
	var errs []error
	if b.cfg.UseStack {
		if err := b.deleteStack(ctx, c, name); err != nil {
			errs = append(errs, err)
		}
		made = tempMade{object: made.object} // the rest was the stack's own; gone with it
	}
	group, haveGroup := made.group, made.group != ""
	err := together(func() error {
		if made.instance == "" {
			return nil
		}
		return b.terminate(ctx, c, made.instance)
	}, func() error {
		// Any other instance of the token: an earlier attempt's.
		insts, err := describeInstances(ctx, c, []ec2types.Filter{
			filter("tag:"+cloud.TagToken, token),
			filter("instance-state-name", slices.Concat(liveStates, []string{"shutting-down"})...),
		})
		if err != nil {
			return err
		}
		var terms []func() error
		for _, inst := range insts {
			if id := aws.ToString(inst.InstanceId); id != made.instance {
				terms = append(terms, func() error { return b.terminate(ctx, c, id) })
			}
		}
		return together(terms...)
	}, func() error {
		if _, err := c.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(name)}); err != nil {
			if err = classify(err); !errors.Is(err, cloud.ErrNotFound) {
				return fmt.Errorf("delete key pair %s in %s: %w", name, c.region, err)
			}
		}
		return nil
	}, func() error {
		// The instance fetched its bundle when it booted.
		if made.object == "" {
			return nil
		}
		return deleteObject(ctx, c, b.cfg.Bucket, made.object)
	}, func() error {
		if haveGroup {
			return nil
		}
		var err error
		group, haveGroup, err = groupByName(ctx, c, name)
		return err
	})
	if err != nil {
		errs = append(errs, err)
	}
	if haveGroup {
		if err := b.deleteGroupRetry(ctx, c, group); err != nil {
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
