package aws

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// liveStates are the instance states a rerun can pick up again.
var liveStates = []string{"pending", "running", "stopping", "stopped"}

// instanceSpec is what RunInstances needs for a build or test machine.
type instanceSpec struct {
	ImageID      string
	InstanceType string
	UserData     string // base64
	KeyName      string
	GroupID      string
	SubnetID     string
	Tags         map[string]string
	Token        string
	Devices      []ec2types.BlockDeviceMapping
}

// instanceByToken finds a live instance tagged with token.
func instanceByToken(ctx context.Context, c *regional, token string) (ec2types.Instance, bool, error) {
	insts, err := describeInstances(ctx, c, []ec2types.Filter{
		filter("tag:"+cloud.TagToken, token),
		filter("instance-state-name", liveStates...),
	})
	if err != nil || len(insts) == 0 {
		return ec2types.Instance{}, false, err
	}
	return insts[0], true, nil
}

func describeInstances(ctx context.Context, c *regional, filters []ec2types.Filter, ids ...string) ([]ec2types.Instance, error) {
	in := &ec2.DescribeInstancesInput{Filters: filters}
	if len(ids) > 0 {
		in.Filters = append(in.Filters, filter("instance-id", ids...))
	}
	var out []ec2types.Instance
	p := ec2.NewDescribeInstancesPaginator(c.ec2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instances in %s: %w", c.region, classify(err))
		}
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	return out, nil
}

// runInstance starts one instance with spec, tagged (instance and volumes)
// at creation and stopping, not terminating, when the guest shuts down.
// The client token makes a retried call return the same instance. AWS
// keeps answering a token with its instance even after that instance is
// gone, so when the token's instance is already terminated (an earlier
// attempt failed and was cleaned up) a token derived from it is used.
func (b *Backend) runInstance(ctx context.Context, c *regional, spec instanceSpec) (string, error) {
	token := spec.Token
	for attempt := 0; attempt < 4; attempt++ {
		in := &ec2.RunInstancesInput{
			ImageId:                           aws.String(spec.ImageID),
			InstanceType:                      ec2types.InstanceType(spec.InstanceType),
			MinCount:                          aws.Int32(1),
			MaxCount:                          aws.Int32(1),
			ClientToken:                       aws.String(token),
			UserData:                          aws.String(spec.UserData),
			InstanceInitiatedShutdownBehavior: ec2types.ShutdownBehaviorStop,
			TagSpecifications:                 tagSpecs(spec.Tags, ec2types.ResourceTypeInstance, ec2types.ResourceTypeVolume),
			BlockDeviceMappings:               spec.Devices,
			MetadataOptions: &ec2types.InstanceMetadataOptionsRequest{
				HttpTokens: ec2types.HttpTokensStateRequired,
			},
		}
		if spec.KeyName != "" {
			in.KeyName = aws.String(spec.KeyName)
		}
		if spec.GroupID != "" {
			in.SecurityGroupIds = []string{spec.GroupID}
		}
		if spec.SubnetID != "" {
			in.SubnetId = aws.String(spec.SubnetID)
		}
		out, err := c.ec2.RunInstances(ctx, in)
		if isCode(err, "IdempotentParameterMismatch") {
			token = cloud.Token(spec.Token, "attempt", fmt.Sprint(attempt+1))
			continue
		}
		if err != nil {
			return "", fmt.Errorf("run instance from %s in %s: %w", spec.ImageID, c.region, classify(err))
		}
		if len(out.Instances) == 0 {
			return "", fmt.Errorf("run instance from %s in %s: no instance in the answer", spec.ImageID, c.region)
		}
		inst := out.Instances[0]
		if s := instanceState(inst); s == ec2types.InstanceStateNameTerminated || s == ec2types.InstanceStateNameShuttingDown {
			token = cloud.Token(spec.Token, "attempt", fmt.Sprint(attempt+1))
			continue
		}
		id := aws.ToString(inst.InstanceId)
		b.log.Info("instance started", "region", c.region, "instance", id, "image", spec.ImageID)
		return id, nil
	}
	return "", fmt.Errorf("run instance from %s in %s: every client token derived from %s belongs to a terminated instance", spec.ImageID, c.region, spec.Token)
}

func instanceState(inst ec2types.Instance) ec2types.InstanceStateName {
	if inst.State == nil {
		return ""
	}
	return inst.State.Name
}

// waitInstance waits until the instance reaches state want. Waiting for
// terminated accepts an instance that is gone; waiting for any other state
// fails when the instance terminates instead.
func (b *Backend) waitInstance(ctx context.Context, c *regional, id string, want ec2types.InstanceStateName, timeout time.Duration, what string) (ec2types.Instance, error) {
	var (
		inst    ec2types.Instance
		missing int
		last    string
	)
	err := b.poll(ctx, what, timeout, func(ctx context.Context) (bool, error) {
		insts, err := describeInstances(ctx, c, nil, id)
		if err != nil {
			return false, err
		}
		if len(insts) == 0 {
			if want == ec2types.InstanceStateNameTerminated {
				return true, nil
			}
			missing++
			if missing > 5 {
				return false, cloud.Mark(fmt.Errorf("instance %s not found in %s", id, c.region), cloud.ErrNotFound)
			}
			return false, nil
		}
		inst = insts[0]
		s := instanceState(inst)
		last = string(s)
		switch {
		case s == want:
			return true, nil
		case want != ec2types.InstanceStateNameTerminated &&
			(s == ec2types.InstanceStateNameTerminated || s == ec2types.InstanceStateNameShuttingDown):
			return false, fmt.Errorf("instance %s in %s is %s while waiting for %s: %s", id, c.region, s, want, stateReason(inst.StateReason))
		}
		return false, nil
	})
	var te *cloud.TimeoutError
	if errors.As(err, &te) && te.Last == nil && last != "" {
		te.Last = fmt.Errorf("instance %s was %s", id, last)
	}
	return inst, err
}

// terminate terminates an instance and waits until it is gone; an absent
// instance is done.
func (b *Backend) terminate(ctx context.Context, c *regional, id string) error {
	if err := b.terminateRequest(ctx, c, id); err != nil {
		return err
	}
	return b.waitTerminated(ctx, c, id)
}

// terminateRequest asks EC2 to terminate an instance; an absent instance
// is done. From then on the instance goes by itself.
func (b *Backend) terminateRequest(ctx context.Context, c *regional, id string) error {
	_, err := c.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
	if err = classify(err); err != nil && !errors.Is(err, cloud.ErrNotFound) {
		return fmt.Errorf("terminate %s in %s: %w", id, c.region, err)
	}
	return nil
}

// waitTerminated waits until a terminating instance is gone.
func (b *Backend) waitTerminated(ctx context.Context, c *regional, id string) error {
	_, err := b.waitInstance(ctx, c, id, ec2types.InstanceStateNameTerminated, 15*time.Minute,
		fmt.Sprintf("instance %s in %s to terminate", id, c.region))
	return err
}

// consoleOutput returns the instance's console text ("" when there is
// none yet). It asks for the latest output, which only Nitro instances
// offer, and falls back to the buffered one where that is refused.
func consoleOutput(ctx context.Context, c *regional, id string) (string, error) {
	out, err := c.ec2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id), Latest: aws.Bool(true)})
	if isCode(err, "UnsupportedOperation") || isCode(err, "InvalidParameterCombination") {
		out, err = c.ec2.GetConsoleOutput(ctx, &ec2.GetConsoleOutputInput{InstanceId: aws.String(id)})
	}
	if err != nil {
		return "", fmt.Errorf("console output of %s in %s: %w", id, c.region, classify(err))
	}
	return decodeConsole(aws.ToString(out.Output)), nil
}
