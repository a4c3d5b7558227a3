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
// SetRunning does nothing (a stack's compute is an instance unit's);
// SetProtected sets or lifts termination protection. It waits for a
// delete polling every poll, up to timeout.
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

// Destroy deletes the unit's stack and waits until it is gone: absent
// succeeds; DELETE_FAILED is a *deploy.DestroyError naming each resource
// that did not go and why. A stack with termination protection is an
// error matching deploy.ErrProtected: teardown lifts it (SetProtected)
// only when the destroy of a protected deployment was forced.
func (k *stackKind) Destroy(ctx context.Context, u deploy.Unit) error {
	c := k.a.region(u.Region)
	name := stackName(u)
	st, ok, err := c.describeStack(ctx, name)
	if err != nil || !ok {
		return err
	}
	id := aws.ToString(st.StackId)
	if aws.ToBool(st.EnableTerminationProtection) {
		return fmt.Errorf("stack %s in %s has termination protection: %w", name, u.Region, deploy.ErrProtected)
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
			e := &deploy.DestroyError{Deployment: u.Deployment, Unit: u.Name, Region: u.Region,
				Resource: "stack " + name, Status: string(s.StackStatus), Reason: aws.ToString(s.StackStatusReason)}
			res, err := c.stackResources(ctx, id)
			if err != nil {
				return false, err
			}
			for _, r := range res {
				if r.ResourceStatus == cfntypes.ResourceStatusDeleteFailed {
					e.Failed = append(e.Failed, deploy.FailedResource{Type: aws.ToString(r.ResourceType), ID: aws.ToString(r.PhysicalResourceId),
						LogicalID: aws.ToString(r.LogicalResourceId), Reason: aws.ToString(r.ResourceStatusReason)})
				}
			}
			// Final for this call: the teardown decides what to retry.
			return false, e
		}
		return false, nil
	})
}

// SetProtected turns the stack's termination protection on or off
// (deploy.Protector). An absent stack is an error matching
// cloud.ErrNotFound.
func (k *stackKind) SetProtected(ctx context.Context, u deploy.Unit, on bool) error {
	c := k.a.region(u.Region)
	name := stackName(u)
	st, ok, err := c.describeStack(ctx, name)
	if err != nil {
		return err
	}
	if !ok {
		return cloud.Mark(fmt.Errorf("stack %s in %s: not found", name, u.Region), cloud.ErrNotFound)
	}
	if aws.ToBool(st.EnableTerminationProtection) == on {
		return nil
	}
	_, err = c.cfn.UpdateTerminationProtection(ctx, &cloudformation.UpdateTerminationProtectionInput{
		StackName: st.StackId, EnableTerminationProtection: aws.Bool(on),
	})
	return wrap("termination protection of stack", name, err)
}

var _ deploy.Protector = (*stackKind)(nil)
