package awsunit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/fanout"
)

const typeInstance = "AWS::EC2::Instance"

// listResources lists the stack's resources that exist (not deleted, with
// a physical id).
func listResources(ctx context.Context, c *clients, stack string) ([]cfntypes.StackResourceSummary, error) {
	var out []cfntypes.StackResourceSummary
	p := cloudformation.NewListStackResourcesPaginator(c.cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String(stack)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("resources of stack %s in %s: %w", stack, c.region, classify(err))
		}
		for _, r := range page.StackResourceSummaries {
			if aws.ToString(r.LogicalResourceId) == "" || aws.ToString(r.PhysicalResourceId) == "" ||
				r.ResourceStatus == cfntypes.ResourceStatusDeleteComplete {
				continue
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// instancesOf returns the stack's instances as EC2 describes them, by id;
// an instance EC2 no longer knows is missing from the map.
func instancesOf(ctx context.Context, c *clients, res []cfntypes.StackResourceSummary) (map[string]ec2types.Instance, []cfntypes.StackResourceSummary, error) {
	var ids []string
	var of []cfntypes.StackResourceSummary
	for _, r := range res {
		if aws.ToString(r.ResourceType) == typeInstance {
			ids = append(ids, aws.ToString(r.PhysicalResourceId))
			of = append(of, r)
		}
	}
	out := map[string]ec2types.Instance{}
	if len(ids) == 0 {
		return out, nil, nil
	}
	p := ec2.NewDescribeInstancesPaginator(c.ec2, &ec2.DescribeInstancesInput{
		Filters: []ec2types.Filter{{Name: aws.String("instance-id"), Values: ids}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("describe instances in %s: %w", c.region, classify(err))
		}
		for _, r := range page.Reservations {
			for _, i := range r.Instances {
				out[aws.ToString(i.InstanceId)] = i
			}
		}
	}
	return out, of, nil
}

// compute says what the stack's instances do: running (all of them, or
// there are none), stopped (all), pending (some starting or stopping), or
// failed with the problem (one terminated or stopped behind kiln's back).
func (k *Stack) compute(ctx context.Context, c *clients, res []cfntypes.StackResourceSummary) (deploy.UnitState, string, error) {
	insts, of, err := instancesOf(ctx, c, res)
	if err != nil || len(of) == 0 {
		return deploy.UnitRunning, "", err
	}
	count := map[ec2types.InstanceStateName]int{}
	var problems []string
	for _, r := range of {
		id := aws.ToString(r.PhysicalResourceId)
		i, ok := insts[id]
		if !ok {
			problems = append(problems, fmt.Sprintf("instance %s (%s) no longer exists", id, aws.ToString(r.LogicalResourceId)))
			continue
		}
		st := i.State.Name
		count[st]++
		if st == ec2types.InstanceStateNameTerminated || st == ec2types.InstanceStateNameShuttingDown {
			why := ""
			if i.StateReason != nil {
				why = ": " + aws.ToString(i.StateReason.Message)
			}
			problems = append(problems, fmt.Sprintf("instance %s (%s) is %s%s; CloudFormation does not replace it by itself", id, aws.ToString(r.LogicalResourceId), st, why))
		}
	}
	n := len(of)
	switch {
	case len(problems) > 0:
		return deploy.UnitFailed, strings.Join(problems, "; "), nil
	case count[ec2types.InstanceStateNameRunning] == n:
		return deploy.UnitRunning, "", nil
	case count[ec2types.InstanceStateNameStopped] == n:
		return deploy.UnitStopped, "", nil
	case count[ec2types.InstanceStateNamePending]+count[ec2types.InstanceStateNameStopping] > 0:
		return deploy.UnitPending, "", nil
	}
	return deploy.UnitFailed, fmt.Sprintf("%d of the stack's %d instances are stopped, the others run", count[ec2types.InstanceStateNameStopped], n), nil
}

// setInstances starts (or stops) the stack's instances and waits until
// they run (or are stopped).
func (k *Stack) setInstances(ctx context.Context, c *clients, stack string, res []cfntypes.StackResourceSummary, running bool) error {
	insts, of, err := instancesOf(ctx, c, res)
	if err != nil || len(of) == 0 {
		return err
	}
	var ids []string
	for _, r := range of {
		id := aws.ToString(r.PhysicalResourceId)
		if i, ok := insts[id]; !ok || i.State.Name == ec2types.InstanceStateNameTerminated || i.State.Name == ec2types.InstanceStateNameShuttingDown {
			if running {
				return fmt.Errorf("stack %s in %s: instance %s (%s) was terminated outside CloudFormation, which does not replace it by itself; destroy the unit and deploy it again", stack, c.region, id, aws.ToString(r.LogicalResourceId))
			}
			continue
		}
		ids = append(ids, id)
	}
	return setRunning(ctx, k.o, c, ids, running)
}

// setRunning starts or stops instances and waits for them.
func setRunning(ctx context.Context, o Options, c *clients, ids []string, running bool) error {
	if len(ids) == 0 {
		return nil
	}
	want := ec2types.InstanceStateNameStopped
	if running {
		want = ec2types.InstanceStateNameRunning
	}
	return o.wait(ctx, fmt.Sprintf("instances %s in %s to be %s", strings.Join(ids, ", "), c.region, want), func(ctx context.Context) (bool, error) {
		out, err := c.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})
		if err != nil {
			return false, fmt.Errorf("describe instances in %s: %w", c.region, classify(err))
		}
		var act []string
		done := true
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				st := i.State.Name
				if st != want {
					done = false
				}
				switch {
				case running && st == ec2types.InstanceStateNameStopped, !running && (st == ec2types.InstanceStateNameRunning || st == ec2types.InstanceStateNamePending):
					act = append(act, aws.ToString(i.InstanceId))
				case st == ec2types.InstanceStateNameTerminated || st == ec2types.InstanceStateNameShuttingDown:
					return false, fmt.Errorf("instance %s in %s is %s", aws.ToString(i.InstanceId), c.region, st)
				}
			}
		}
		if len(act) > 0 {
			if running {
				_, err = c.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: act})
			} else {
				_, err = c.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: act})
			}
			if err != nil {
				return false, fmt.Errorf("%s instances %s in %s: %w", map[bool]string{true: "start", false: "stop"}[running], strings.Join(act, ", "), c.region, classify(err))
			}
		}
		return done, nil
	})
}

// status is the stack as it is.
func (k *Stack) status(ctx context.Context, c *clients, u deploy.Unit, st *cfntypes.Stack, res []cfntypes.StackResourceSummary) (deploy.UnitStatus, error) {
	tags := tagMap(st.Tags)
	out := deploy.UnitStatus{Token: tags[tagToken], Outputs: map[string]string{}, Drift: []string{}}
	for _, o := range st.Outputs {
		out.Outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	reason := aws.ToString(st.StackStatusReason)
	switch s := st.StackStatus; {
	case inProgress(s):
		out.State = deploy.UnitPending
		return out, nil
	case !up(s):
		out.State, out.Problem = deploy.UnitFailed, fmt.Sprintf("stack %s: %s", s, reason)
		return out, nil
	case s == cfntypes.StackStatusUpdateRollbackComplete:
		out.Problem = "its last update failed and was rolled back"
		if reason != "" {
			out.Problem += ": " + reason
		}
	}
	state, problem, err := k.compute(ctx, c, res)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	out.State = state
	if problem != "" {
		out.Problem = problem
	}
	if len(u.Tags) > 0 {
		drift, err := k.tagDrift(ctx, c, res, u.Tags)
		if err != nil {
			return deploy.UnitStatus{}, err
		}
		out.Drift = append(out.Drift, drift...)
	}
	if aws.ToBool(st.EnableTerminationProtection) != u.Protect {
		out.Drift = append(out.Drift, fmt.Sprintf("termination protection is %s, the deployment wants it %s", onOff(aws.ToBool(st.EnableTerminationProtection)), onOff(u.Protect)))
	}
	if u.Config != nil && u.Config.Stack != nil {
		if d, _, err := templateDigest(u); err == nil && tags[tagTemplate] != "" && d[:16] != tags[tagTemplate] {
			out.Drift = append(out.Drift, fmt.Sprintf("the template %s changed since the stack was deployed", u.Config.Stack.Template))
		}
	}
	return out, nil
}

// Status reads the stack: absent when there is none (or only the empty
// stack of a change set never executed), pending during an operation,
// failed when it did not come up, else what its instances do.
func (k *Stack) Status(ctx context.Context, u deploy.Unit) (deploy.UnitStatus, error) {
	name, c, err := k.cc.unit(u)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	st, err := describe(ctx, c, name)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	if st == nil || st.StackStatus == cfntypes.StackStatusReviewInProgress {
		return deploy.UnitStatus{State: deploy.UnitAbsent, Outputs: map[string]string{}, Drift: []string{}}, nil
	}
	var res []cfntypes.StackResourceSummary
	if !inProgress(st.StackStatus) {
		if res, err = listResources(ctx, c, name); err != nil {
			return deploy.UnitStatus{}, err
		}
	}
	return k.status(ctx, c, u, st, res)
}

// SetRunning stops or starts the stack's instances; a stack without any
// has nothing to do.
func (k *Stack) SetRunning(ctx context.Context, u deploy.Unit, running bool) error {
	name, c, err := k.cc.unit(u)
	if err != nil {
		return err
	}
	st, err := describe(ctx, c, name)
	if err != nil {
		return err
	}
	if st == nil || st.StackStatus == cfntypes.StackStatusReviewInProgress {
		return cloud.Mark(fmt.Errorf("stack %s in %s does not exist", name, c.region), cloud.ErrNotFound)
	}
	if inProgress(st.StackStatus) {
		return cloud.Mark(fmt.Errorf("stack %s in %s is %s", name, c.region, st.StackStatus), cloud.ErrNotYet)
	}
	res, err := listResources(ctx, c, name)
	if err != nil {
		return err
	}
	return k.setInstances(ctx, c, name, res, running)
}

// Resources lists the stacks in region whose tags match, each followed
// by its resources (Parent the stack's name) with the tags they carry —
// read from the service for the types kiln tags itself, else the stack's
// tags, which CloudFormation passes on — and Retain set for what the
// template's DeletionPolicy or a kiln:retain=true tag keeps when the
// stack is deleted. What a deleted stack retained is no longer listed
// here: teardown finds it by its tags.
func (k *Stack) Resources(ctx context.Context, region string, tags map[string]string) ([]deploy.Resource, error) {
	c, err := k.cc.region(region)
	if err != nil {
		return nil, err
	}
	var stacks []cfntypes.Stack
	p := cloudformation.NewDescribeStacksPaginator(c.cfn, &cloudformation.DescribeStacksInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list stacks in %s: %w", region, classify(err))
		}
		for _, s := range page.Stacks {
			if s.StackStatus != cfntypes.StackStatusDeleteComplete && cloud.Match(tagMap(s.Tags), tags) {
				stacks = append(stacks, s)
			}
		}
	}
	slices.SortFunc(stacks, func(a, b cfntypes.Stack) int {
		return strings.Compare(aws.ToString(a.StackName), aws.ToString(b.StackName))
	})
	// Each stack's resources, template and tags are its own requests:
	// read several stacks at once, as a deployment has many.
	per := make([][]deploy.Resource, len(stacks))
	errs := fanout.Range(ctx, len(stacks), stackReadConcurrency, func(ctx context.Context, i int) error {
		var err error
		per[i], err = stackResources(ctx, c, region, stacks[i])
		return err
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := []deploy.Resource{}
	for _, rs := range per {
		out = append(out, rs...)
	}
	return out, nil
}

// stackReadConcurrency bounds the stacks Resources reads at once.
const stackReadConcurrency = 8

// stackResources is one stack of Resources, followed by its resources.
func stackResources(ctx context.Context, c *clients, region string, s cfntypes.Stack) ([]deploy.Resource, error) {
	name, stags := aws.ToString(s.StackName), tagMap(s.Tags)
	out := []deploy.Resource{{Type: "AWS::CloudFormation::Stack", ID: name, Region: region, Tags: stags, Created: aws.ToTime(s.CreationTime).UTC().Truncate(time.Second)}}
	if s.StackStatus == cfntypes.StackStatusReviewInProgress {
		return out, nil
	}
	res, err := listResources(ctx, c, name)
	if err != nil {
		if errors.Is(err, cloud.ErrNotFound) {
			return out, nil // deleted meanwhile
		}
		return nil, err
	}
	keep, err := retained(ctx, c, name)
	if err != nil {
		return nil, err
	}
	for _, r := range res {
		typ, id := aws.ToString(r.ResourceType), aws.ToString(r.PhysicalResourceId)
		rtags := stags
		if t := taggerFor(typ, id); t != nil {
			if rtags, err = t.read(ctx, c, id); err != nil {
				if errors.Is(err, cloud.ErrNotFound) {
					continue // gone, whatever CloudFormation says
				}
				return nil, err
			}
		}
		out = append(out, deploy.Resource{
			Type: typ, ID: id, Region: region, Tags: rtags, Parent: name,
			Retain:  keep[aws.ToString(r.LogicalResourceId)] || rtags[cloud.TagRetain] == "true",
			Created: aws.ToTime(r.LastUpdatedTimestamp).UTC().Truncate(time.Second),
		})
	}
	return out, nil
}

// retained returns the logical ids of the resources the stack's template
// keeps on delete (DeletionPolicy Retain or RetainExceptOnCreate).
func retained(ctx context.Context, c *clients, stack string) (map[string]bool, error) {
	out, err := c.cfn.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(stack)})
	if err != nil {
		if err = classify(err); errors.Is(err, cloud.ErrNotFound) {
			return map[string]bool{}, nil
		}
		return nil, fmt.Errorf("template of stack %s in %s: %w", stack, c.region, err)
	}
	t, err := parseTemplate([]byte(aws.ToString(out.TemplateBody)))
	if err != nil {
		return nil, fmt.Errorf("template of stack %s in %s: %w", stack, c.region, err)
	}
	keep := map[string]bool{}
	for id, r := range t.Resources {
		if r.retained() {
			keep[id] = true
		}
	}
	return keep, nil
}
