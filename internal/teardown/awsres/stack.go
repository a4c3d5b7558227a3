package awsres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"go.yaml.in/yaml/v3"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
)

// StackKind returns the part of the CloudFormation stack unit kind a
// teardown needs — Resources and Destroy — for deployments whose stacks
// the full kind (change sets, deploys; package awsunit) made. Stacks are
// named kiln-<project>-<deployment>-<unit>, as that kind names them.
// Plan, Apply and Status answer that stack units are not built here;
// SetRunning does nothing (a stack's compute is an instance unit's). It
// waits for a delete polling every poll, up to timeout.
//
// It is the seam the full kind replaces: cmd/kiln uses it only when the
// backend has no stack kind of its own.
func (a *Account) StackKind(poll, timeout time.Duration) deploy.UnitKind {
	return &stackKind{a: a, poll: poll, timeout: timeout}
}

type stackKind struct {
	a             *Account
	poll, timeout time.Duration
}

// stackName is the name of a unit's stack.
func stackName(u deploy.Unit) string {
	return "kiln-" + u.Project + "-" + u.Deployment + "-" + u.Name
}

var errNotBuilt = cloud.Mark(errors.New("stack units are not deployed by this kiln (only destroyed)"), cloud.ErrInvalid)

func (k *stackKind) Plan(context.Context, deploy.Unit) (deploy.UnitPlan, error) {
	return deploy.UnitPlan{}, errNotBuilt
}

func (k *stackKind) Apply(context.Context, deploy.Unit) (deploy.UnitStatus, error) {
	return deploy.UnitStatus{}, errNotBuilt
}

func (k *stackKind) Status(context.Context, deploy.Unit) (deploy.UnitStatus, error) {
	return deploy.UnitStatus{}, errNotBuilt
}

func (k *stackKind) SetRunning(context.Context, deploy.Unit, bool) error { return nil }

// Resources lists the stacks whose tags match, each with its resources
// (Parent: the stack's name; Retain where the template's DeletionPolicy
// keeps the resource; the stack's tags, which the services do not all
// pass on).
func (k *stackKind) Resources(ctx context.Context, region string, tags map[string]string) ([]deploy.Resource, error) {
	c := k.a.region(region)
	mappings, err := c.tagged(ctx, tags, []string{"cloudformation:stack"})
	if err != nil {
		return nil, err
	}
	var out []deploy.Resource
	for _, m := range mappings {
		_, name, ok := parseARN(m.arn)
		if !ok {
			continue
		}
		st, ok, err := c.describeStack(ctx, name)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // a stale entry
		}
		stags := mapTags(st.Tags, func(t cfntypes.Tag) (*string, *string) { return t.Key, t.Value })
		if !cloud.Match(stags, tags) {
			continue
		}
		out = append(out, deploy.Resource{Type: "AWS::CloudFormation::Stack", ID: name, Region: region, Tags: stags, Created: aws.ToTime(st.CreationTime)})
		children, err := c.stackResources(ctx, name)
		if err != nil {
			return nil, err
		}
		retain, err := c.retained(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, r := range children {
			id := aws.ToString(r.PhysicalResourceId)
			if id == "" || r.ResourceStatus == cfntypes.ResourceStatusDeleteComplete {
				continue
			}
			out = append(out, deploy.Resource{Type: aws.ToString(r.ResourceType), ID: id, Region: region, Tags: stags,
				Parent: name, Retain: retain[aws.ToString(r.LogicalResourceId)]})
		}
	}
	return out, nil
}

// describeStack returns the live stack called (or identified by) name.
func (c *clients) describeStack(ctx context.Context, name string) (cfntypes.Stack, bool, error) {
	out, err := c.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if notFound(err) {
		return cfntypes.Stack{}, false, nil
	}
	if err != nil {
		return cfntypes.Stack{}, false, wrap("describe stack", name, err)
	}
	for _, s := range out.Stacks {
		if s.StackStatus != cfntypes.StackStatusDeleteComplete {
			return s, true, nil
		}
	}
	return cfntypes.Stack{}, false, nil
}

func (c *clients) stackResources(ctx context.Context, name string) ([]cfntypes.StackResource, error) {
	out, err := c.cfn.DescribeStackResources(ctx, &cloudformation.DescribeStackResourcesInput{StackName: aws.String(name)})
	if err != nil {
		return nil, wrap("resources of stack", name, err)
	}
	var res []cfntypes.StackResource
	for _, r := range out.StackResources {
		if aws.ToString(r.LogicalResourceId) != "" {
			res = append(res, r)
		}
	}
	return res, nil
}

// retained returns the logical ids the stack's template keeps on delete
// (DeletionPolicy Retain or RetainExceptOnCreate). YAML reads JSON too.
func (c *clients) retained(ctx context.Context, name string) (map[string]bool, error) {
	out, err := c.cfn.GetTemplate(ctx, &cloudformation.GetTemplateInput{StackName: aws.String(name)})
	if err != nil {
		return nil, wrap("template of stack", name, err)
	}
	var t struct {
		Resources map[string]struct {
			DeletionPolicy string `yaml:"DeletionPolicy"`
		} `yaml:"Resources"`
	}
	if err := yaml.Unmarshal([]byte(aws.ToString(out.TemplateBody)), &t); err != nil {
		return nil, fmt.Errorf("template of stack %s: %w", name, err)
	}
	keep := map[string]bool{}
	for id, r := range t.Resources {
		if strings.HasPrefix(r.DeletionPolicy, "Retain") {
			keep[id] = true
		}
	}
	return keep, nil
}

// StackDeleteFailed is a stack delete that ended in DELETE_FAILED: the
// stack's reason, and each resource that could not be deleted with its
// own. Deleting again fails the same way until the cause is removed (a
// bucket emptied), so it is final for the call that met it.
type StackDeleteFailed struct {
	Stack     string
	Reason    string
	Resources []FailedResource
}

// FailedResource is one resource a stack could not delete.
type FailedResource struct {
	LogicalID, PhysicalID, Type, Reason string
}

func (e *StackDeleteFailed) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "stack %s: DELETE_FAILED", e.Stack)
	for _, r := range e.Resources {
		fmt.Fprintf(&b, "; %s %s (%s): %s", r.Type, r.PhysicalID, r.LogicalID, r.Reason)
	}
	if len(e.Resources) == 0 && e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	return b.String()
}

// Destroy deletes the unit's stack and waits until it is gone: absent
// succeeds; DELETE_FAILED is a *StackDeleteFailed. Termination protection
// is lifted first: the teardown that calls it has checked the
// deployment's protect setting already.
func (k *stackKind) Destroy(ctx context.Context, u deploy.Unit) error {
	c := k.a.region(u.Region)
	name := stackName(u)
	st, ok, err := c.describeStack(ctx, name)
	if err != nil || !ok {
		return err
	}
	id := aws.ToString(st.StackId)
	if aws.ToBool(st.EnableTerminationProtection) {
		if _, err := c.cfn.UpdateTerminationProtection(ctx, &cloudformation.UpdateTerminationProtectionInput{
			StackName: aws.String(id), EnableTerminationProtection: aws.Bool(false),
		}); err != nil {
			return wrap("lift the termination protection of stack", name, err)
		}
	}
	if _, err := c.cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(id)}); err != nil {
		return wrap("delete stack", name, err)
	}
	// By id: by name a deleted stack is simply absent; by id it shows
	// DELETE_COMPLETE, or DELETE_FAILED with its reasons.
	return cloud.Poll(ctx, fmt.Sprintf("stack %s in %s to be deleted", name, u.Region), k.poll, k.timeout, func(ctx context.Context) (bool, error) {
		out, err := c.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(id)})
		if notFound(err) {
			return true, nil
		}
		if err != nil {
			return false, wrap("describe stack", name, err)
		}
		if len(out.Stacks) == 0 {
			return true, nil
		}
		switch s := out.Stacks[0]; s.StackStatus {
		case cfntypes.StackStatusDeleteComplete:
			c.log(ctx, "stack deleted", "stack", name)
			return true, nil
		case cfntypes.StackStatusDeleteFailed:
			e := &StackDeleteFailed{Stack: name, Reason: aws.ToString(s.StackStatusReason)}
			res, err := c.stackResources(ctx, id)
			if err != nil {
				return false, err
			}
			for _, r := range res {
				if r.ResourceStatus == cfntypes.ResourceStatusDeleteFailed {
					e.Resources = append(e.Resources, FailedResource{LogicalID: aws.ToString(r.LogicalResourceId),
						PhysicalID: aws.ToString(r.PhysicalResourceId), Type: aws.ToString(r.ResourceType), Reason: aws.ToString(r.ResourceStatusReason)})
				}
			}
			// Final for this call: the teardown decides what to retry.
			return false, e
		}
		return false, nil
	})
}
