package awsunit

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
)

// maxRounds bounds how often Apply looks at the stack again after
// something else changed it (another process, a change set gone stale).
const maxRounds = 8

// Apply takes the stack to the unit's spec: it makes the change set (or
// finds the one an earlier process made), executes it, waits for the
// stack, then tags what CloudFormation did not, sets termination
// protection from Unit.Protect and starts stopped instances. A stack that
// failed to create is deleted and made again; a change set that failed or
// a stack operation that rolled back is an error naming the resources
// and reasons CloudFormation gave, and leaves the stack as it is.
func (k *Stack) Apply(ctx context.Context, u deploy.Unit) (deploy.UnitStatus, error) {
	sp, err := specOf(u)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	c, err := k.cc.region(u.Region)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	for round := 0; round < maxRounds; round++ {
		st, err := describe(ctx, c, sp.stack)
		if err != nil {
			return deploy.UnitStatus{}, err
		}
		if st != nil && inProgress(st.StackStatus) {
			k.o.log().Info("waiting for the stack's running operation", "stack", sp.stack, "region", c.region, "status", st.StackStatus)
			if _, err := k.waitSettled(ctx, c, sp.stack, aws.ToString(st.StackId)); err != nil {
				return deploy.UnitStatus{}, err
			}
			continue
		}
		switch {
		case st == nil || st.StackStatus == cfntypes.StackStatusReviewInProgress:
			done, err := k.run(ctx, c, u, sp, cfntypes.ChangeSetTypeCreate)
			if err != nil || !done {
				if err != nil {
					return deploy.UnitStatus{}, err
				}
				continue
			}
		case failedCreate(st.StackStatus):
			k.o.log().Warn("stack failed to create before; deleting it to make it again", "stack", sp.stack, "region", c.region, "status", st.StackStatus, "reason", aws.ToString(st.StackStatusReason))
			if err := k.delete(ctx, c, u, st); err != nil {
				return deploy.UnitStatus{}, err
			}
			continue
		case st.StackStatus == cfntypes.StackStatusDeleteFailed:
			return deploy.UnitStatus{}, cloud.Mark(fmt.Errorf("stack %s in %s is DELETE_FAILED (%s); destroy it before deploying it again", sp.stack, c.region, aws.ToString(st.StackStatusReason)), cloud.ErrInvalid)
		case !up(st.StackStatus):
			return deploy.UnitStatus{}, cloud.Mark(fmt.Errorf("stack %s in %s is %s (%s); CloudFormation cannot update it until that is resolved", sp.stack, c.region, st.StackStatus, aws.ToString(st.StackStatusReason)), cloud.ErrInvalid)
		case !k.atSpec(st, u, sp):
			done, err := k.run(ctx, c, u, sp, cfntypes.ChangeSetTypeUpdate)
			if err != nil {
				return deploy.UnitStatus{}, err
			}
			if !done {
				continue
			}
		}
		st, err = describe(ctx, c, sp.stack)
		if err != nil {
			return deploy.UnitStatus{}, err
		}
		if st == nil || !k.atSpec(st, u, sp) {
			continue
		}
		return k.finish(ctx, c, u, sp, st)
	}
	return deploy.UnitStatus{}, cloud.Mark(fmt.Errorf("stack %s in %s kept changing under kiln (%d rounds); deploy again", sp.stack, c.region, maxRounds), cloud.ErrNotYet)
}

// run makes, executes and waits for the spec's change set of type csType.
// done is false when the stack must be looked at again (someone else
// executed or removed the change set meanwhile).
func (k *Stack) run(ctx context.Context, c *clients, u deploy.Unit, sp *spec, csType cfntypes.ChangeSetType) (done bool, err error) {
	cs, err := k.makeChangeSet(ctx, c, sp, csType)
	if err != nil {
		return false, err
	}
	executed := false
	switch cs.ExecutionStatus {
	case cfntypes.ExecutionStatusAvailable:
		_, err := c.cfn.ExecuteChangeSet(ctx, &cloudformation.ExecuteChangeSetInput{
			StackName: aws.String(sp.stack), ChangeSetName: aws.String(sp.changeSet),
			ClientRequestToken: aws.String(sp.changeSet),
		})
		if err != nil {
			if isCode(err, "InvalidChangeSetStatus") || isCode(err, "ChangeSetNotFound") {
				return false, nil // executed or removed by another process
			}
			return false, fmt.Errorf("execute change set %s of stack %s in %s: %w", sp.changeSet, sp.stack, c.region, classify(err))
		}
		executed = true
		k.o.hook("stack %s change set executed", sp.stack)
	case cfntypes.ExecutionStatusExecuteInProgress:
		// An earlier process executes it; wait for the stack below.
	case cfntypes.ExecutionStatusExecuteComplete:
		// An earlier process executed it, just now (wait for the stack
		// below) or long ago, before the stack was changed again: then
		// it is stale and goes (AWS removes such change sets itself,
		// moto keeps them).
		st, err := describe(ctx, c, sp.stack)
		if err != nil {
			return false, err
		}
		if st != nil && !inProgress(st.StackStatus) && !k.atSpec(st, u, sp) {
			return false, k.dropChangeSet(ctx, c, sp)
		}
	case cfntypes.ExecutionStatusExecuteFailed:
		// An earlier attempt failed and the stack rolled back: this
		// Apply tries again with a fresh change set.
		if err := k.dropChangeSet(ctx, c, sp); err != nil {
			return false, err
		}
		return false, nil
	default: // UNAVAILABLE (failed to create) or OBSOLETE (the stack changed since)
		if cs.Status == cfntypes.ChangeSetStatusFailed {
			reason := aws.ToString(cs.StatusReason)
			if err := k.dropChangeSet(ctx, c, sp); err != nil {
				return false, err
			}
			if noChanges(reason) {
				return false, cloud.Mark(fmt.Errorf("stack %s in %s: CloudFormation found nothing to change for token %s (%s), yet the stack is not tagged with it", sp.stack, c.region, u.Token, reason), cloud.ErrInvalid)
			}
			return false, cloud.Mark(fmt.Errorf("stack %s in %s: %s change set failed: %s", sp.stack, c.region, csType, reason), cloud.ErrInvalid)
		}
		if err := k.dropChangeSet(ctx, c, sp); err != nil {
			return false, err
		}
		return false, nil
	}
	st, err := k.waitSettled(ctx, c, sp.stack, aws.ToString(cs.StackId))
	if err != nil {
		return false, err
	}
	switch {
	case st == nil:
		return false, nil
	case k.atSpec(st, u, sp):
		k.o.hook("stack %s up", sp.stack)
		return true, nil
	case executed || cs.ExecutionStatus != cfntypes.ExecutionStatusAvailable:
		if st.StackStatus == cfntypes.StackStatusCreateComplete || st.StackStatus == cfntypes.StackStatusUpdateComplete {
			return false, nil // someone changed it again meanwhile
		}
		return false, k.failure(ctx, c, st)
	}
	return false, nil
}

// failure is the error of a stack operation that failed: the stack's
// status and reason and the resources CloudFormation names, from its
// events.
func (k *Stack) failure(ctx context.Context, c *clients, st *cfntypes.Stack) error {
	failed, err := failedResources(ctx, c, aws.ToString(st.StackId))
	if err != nil {
		k.o.log().Warn("reading the stack's events", "stack", aws.ToString(st.StackName), "err", err)
	}
	msg := fmt.Sprintf("stack %s in %s: %s", aws.ToString(st.StackName), c.region, st.StackStatus)
	if r := aws.ToString(st.StackStatusReason); r != "" {
		msg += ": " + r
	}
	for _, f := range failed {
		msg += fmt.Sprintf("; %s %s: %s", f.Type, f.LogicalID, f.Reason)
	}
	return fmt.Errorf("%s", msg)
}

// finish does what CloudFormation leaves to kiln once the stack is at the
// spec, and returns its status.
func (k *Stack) finish(ctx context.Context, c *clients, u deploy.Unit, sp *spec, st *cfntypes.Stack) (deploy.UnitStatus, error) {
	res, err := listResources(ctx, c, sp.stack)
	if err != nil {
		return deploy.UnitStatus{}, err
	}
	if err := k.tagResources(ctx, c, sp.stack, res, u.Tags); err != nil {
		return deploy.UnitStatus{}, err
	}
	if aws.ToBool(st.EnableTerminationProtection) != u.Protect {
		if err := k.protect(ctx, c, sp.stack, u.Protect); err != nil {
			return deploy.UnitStatus{}, err
		}
		st.EnableTerminationProtection = aws.Bool(u.Protect)
	}
	if err := k.setInstances(ctx, c, sp.stack, res, true); err != nil {
		return deploy.UnitStatus{}, err
	}
	return k.status(ctx, c, u, st, res)
}

func (k *Stack) protect(ctx context.Context, c *clients, name string, on bool) error {
	_, err := c.cfn.UpdateTerminationProtection(ctx, &cloudformation.UpdateTerminationProtectionInput{
		StackName: aws.String(name), EnableTerminationProtection: aws.Bool(on),
	})
	if err != nil {
		return fmt.Errorf("turn termination protection of stack %s in %s %s: %w", name, c.region, onOff(on), classify(err))
	}
	k.o.hook("stack %s termination protection %s", name, onOff(on))
	return nil
}

// SetProtected turns the stack's termination protection on or off.
func (k *Stack) SetProtected(ctx context.Context, u deploy.Unit, on bool) error {
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
	if aws.ToBool(st.EnableTerminationProtection) == on {
		return nil
	}
	return k.protect(ctx, c, name, on)
}
