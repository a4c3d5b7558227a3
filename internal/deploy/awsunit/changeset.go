package awsunit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// describeChangeSet returns the spec's change set of the stack, nil when
// there is none.
func describeChangeSet(ctx context.Context, c *clients, sp *spec) (*cloudformation.DescribeChangeSetOutput, error) {
	out, err := c.cfn.DescribeChangeSet(ctx, &cloudformation.DescribeChangeSetInput{
		StackName: aws.String(sp.stack), ChangeSetName: aws.String(sp.changeSet),
	})
	if err = classify(err); errors.Is(err, cloud.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("describe change set %s of stack %s in %s: %w", sp.changeSet, sp.stack, c.region, err)
	}
	return out, nil
}

// makeChangeSet makes the spec's change set of type csType unless it
// exists (it is named after the unit's token and template, so a rerun
// finds the one an earlier process made), waits until CloudFormation has
// worked it out, and returns it described.
func (k *Stack) makeChangeSet(ctx context.Context, c *clients, sp *spec, csType cfntypes.ChangeSetType) (*cloudformation.DescribeChangeSetOutput, error) {
	cs, err := describeChangeSet(ctx, c, sp)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		_, err := c.cfn.CreateChangeSet(ctx, &cloudformation.CreateChangeSetInput{
			StackName:     aws.String(sp.stack),
			ChangeSetName: aws.String(sp.changeSet),
			// Always explicit: left out, AWS takes UPDATE, and moto CREATE,
			// which makes a second stack of the same name.
			ChangeSetType: csType,
			TemplateBody:  aws.String(sp.body),
			Parameters:    sp.params,
			Capabilities:  sp.caps,
			Tags:          sp.cfnTags(),
			ClientToken:   aws.String(sp.changeSet),
			Description:   aws.String("kiln: " + sp.stack),
		})
		if err != nil && !isCode(err, "AlreadyExistsException") {
			return nil, fmt.Errorf("create %s change set %s of stack %s in %s: %w", csType, sp.changeSet, sp.stack, c.region, classify(err))
		}
		k.o.hook("stack %s change set created", sp.stack)
	}
	err = k.o.wait(ctx, fmt.Sprintf("change set %s of stack %s in %s", sp.changeSet, sp.stack, c.region), func(ctx context.Context) (bool, error) {
		cs, err = describeChangeSet(ctx, c, sp)
		switch {
		case err != nil:
			return false, err
		case cs == nil:
			return false, cloud.Mark(fmt.Errorf("change set %s of stack %s in %s disappeared", sp.changeSet, sp.stack, c.region), cloud.ErrNotFound)
		}
		return cs.Status != cfntypes.ChangeSetStatusCreatePending && cs.Status != cfntypes.ChangeSetStatusCreateInProgress, nil
	})
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// dropChangeSet deletes the spec's change set, and the stack when it is
// the empty one a CREATE change set makes (REVIEW_IN_PROGRESS) and no
// other change set waits on it.
func (k *Stack) dropChangeSet(ctx context.Context, c *clients, sp *spec) error {
	_, err := c.cfn.DeleteChangeSet(ctx, &cloudformation.DeleteChangeSetInput{
		StackName: aws.String(sp.stack), ChangeSetName: aws.String(sp.changeSet),
	})
	if err = classify(err); err != nil && !errors.Is(err, cloud.ErrNotFound) {
		return fmt.Errorf("delete change set %s of stack %s in %s: %w", sp.changeSet, sp.stack, c.region, err)
	}
	st, err := describe(ctx, c, sp.stack)
	if err != nil || st == nil || st.StackStatus != cfntypes.StackStatusReviewInProgress {
		return err
	}
	left, err := c.cfn.ListChangeSets(ctx, &cloudformation.ListChangeSetsInput{StackName: st.StackId})
	if err != nil {
		return fmt.Errorf("list change sets of stack %s in %s: %w", sp.stack, c.region, classify(err))
	}
	for _, s := range left.Summaries {
		if s.Status != cfntypes.ChangeSetStatusDeleteComplete && s.ExecutionStatus != cfntypes.ExecutionStatusExecuteComplete {
			return nil
		}
	}
	if _, err := c.cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: st.StackId}); err != nil {
		return fmt.Errorf("delete the empty stack %s in %s: %w", sp.stack, c.region, classify(err))
	}
	return nil
}

// noChanges reports whether a change set failed only because there was
// nothing to change.
func noChanges(reason string) bool {
	return strings.Contains(reason, "didn't contain changes") || strings.Contains(reason, "No updates are to be performed")
}

// isCode reports whether err carries the AWS error code code.
func isCode(err error, code string) bool {
	var ae interface{ ErrorCode() string }
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
