package awsunit

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/kiln-images/kiln/internal/deploy"
)

// Destroy deletes the stack and waits until it is gone; CloudFormation
// keeps what the template retains. A stack with termination protection is
// refused with an error matching deploy.ErrProtected; a delete that ends
// in DELETE_FAILED is a *deploy.DestroyError naming each resource that did
// not go and why (a bucket that is not empty), and leaves the stack
// there for teardown to act on and destroy again.
func (k *Stack) Destroy(ctx context.Context, u deploy.Unit) error {
	name, c, err := k.cc.unit(u)
	if err != nil {
		return err
	}
	st, err := describe(ctx, c, name)
	if err != nil || st == nil {
		return err
	}
	if inProgress(st.StackStatus) {
		if st, err = k.waitSettled(ctx, c, name, aws.ToString(st.StackId)); err != nil || st == nil {
			return err
		}
	}
	if aws.ToBool(st.EnableTerminationProtection) {
		return fmt.Errorf("stack %s in %s has termination protection: %w", name, c.region, deploy.ErrProtected)
	}
	return k.delete(ctx, c, u, st)
}

// delete deletes the stack and waits.
func (k *Stack) delete(ctx context.Context, c *clients, u deploy.Unit, st *cfntypes.Stack) error {
	name, id := aws.ToString(st.StackName), aws.ToString(st.StackId)
	k.o.hook("stack %s delete", name)
	if _, err := c.cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(id)}); err != nil {
		return fmt.Errorf("delete stack %s in %s: %w", name, c.region, classify(err))
	}
	after, err := k.waitSettled(ctx, c, name, id)
	if err != nil || after == nil {
		return err
	}
	if after.StackStatus != cfntypes.StackStatusDeleteFailed {
		return fmt.Errorf("delete stack %s in %s: it is %s: %s", name, c.region, after.StackStatus, aws.ToString(after.StackStatusReason))
	}
	e := &deploy.DestroyError{
		Deployment: u.Deployment, Unit: u.Name, Region: c.region,
		Resource: "stack " + name, Status: string(after.StackStatus), Reason: aws.ToString(after.StackStatusReason),
	}
	if e.Failed, err = failedResources(ctx, c, id); err != nil {
		k.o.log().Warn("reading the stack's events", "stack", name, "err", err)
	}
	return e
}

// failedResources reads the stack's events of its last operation, newest
// first back to where it began, and returns the resources that failed with
// CloudFormation's reasons (skipping those cancelled because another
// failed).
func failedResources(ctx context.Context, c *clients, stackID string) ([]deploy.FailedResource, error) {
	var out []deploy.FailedResource
	seen := map[string]bool{}
	p := cloudformation.NewDescribeStackEventsPaginator(c.cfn, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stackID)})
	for pages := 0; p.HasMorePages() && pages < 10; pages++ {
		page, err := p.NextPage(ctx)
		if err != nil {
			return out, classify(err)
		}
		for _, e := range page.StackEvents {
			status, reason := string(e.ResourceStatus), aws.ToString(e.ResourceStatusReason)
			if aws.ToString(e.ResourceType) == "AWS::CloudFormation::Stack" && aws.ToString(e.PhysicalResourceId) == stackID {
				switch e.ResourceStatus {
				case cfntypes.ResourceStatusCreateInProgress, cfntypes.ResourceStatusUpdateInProgress,
					cfntypes.ResourceStatusDeleteInProgress, cfntypes.ResourceStatusImportInProgress:
					return out, nil // where the operation began
				}
				continue
			}
			if !strings.HasSuffix(status, "_FAILED") || strings.Contains(reason, "Resource creation cancelled") || strings.Contains(reason, "Resource update cancelled") {
				continue
			}
			key := aws.ToString(e.LogicalResourceId) + "/" + status
			if seen[key] {
				continue
			}
			seen[key] = true
			out = append(out, deploy.FailedResource{
				Type: aws.ToString(e.ResourceType), ID: aws.ToString(e.PhysicalResourceId),
				LogicalID: aws.ToString(e.LogicalResourceId), Reason: reason,
			})
		}
	}
	return out, nil
}
