package awsunit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
)

// Stack is the stack unit kind: one CloudFormation stack per unit, made
// and changed through change sets of an explicit type (CREATE for a new
// stack, UPDATE otherwise), with the deployment's values as parameters.
// The stack's instances (AWS::EC2::Instance) are its compute: SetRunning
// stops and starts them.
type Stack struct {
	o  Options
	cc *clientCache
}

var (
	_ deploy.UnitKind  = (*Stack)(nil)
	_ deploy.Protector = (*Stack)(nil)
)

// NewStack returns the stack kind.
func NewStack(o Options) *Stack { return &Stack{o: o, cc: newClientCache(o.Config)} }

// Stack states, as kiln groups CloudFormation's.
func inProgress(s cfntypes.StackStatus) bool {
	return strings.HasSuffix(string(s), "_IN_PROGRESS") && s != cfntypes.StackStatusReviewInProgress
}

// up reports whether the stack's resources are in place: created, updated,
// or an update rolled back to what was there before.
func up(s cfntypes.StackStatus) bool {
	switch s {
	case cfntypes.StackStatusCreateComplete, cfntypes.StackStatusUpdateComplete,
		cfntypes.StackStatusUpdateRollbackComplete, cfntypes.StackStatusImportComplete,
		cfntypes.StackStatusImportRollbackComplete:
		return true
	}
	return false
}

// failedCreate reports whether the stack never came up: it must be deleted
// before it can be made again.
func failedCreate(s cfntypes.StackStatus) bool {
	switch s {
	case cfntypes.StackStatusCreateFailed, cfntypes.StackStatusRollbackComplete, cfntypes.StackStatusRollbackFailed:
		return true
	}
	return false
}

func tagMap(tags []cfntypes.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// describe returns the live stack called name (nil when there is none; a
// deleted stack is none).
func describe(ctx context.Context, c *clients, name string) (*cfntypes.Stack, error) {
	out, err := c.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)})
	if err = classify(err); errors.Is(err, cloud.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("describe stack %s in %s: %w", name, c.region, err)
	}
	for i := range out.Stacks {
		if s := out.Stacks[i]; s.StackStatus != cfntypes.StackStatusDeleteComplete {
			return &s, nil
		}
	}
	return nil, nil
}

// waitSettled waits until no operation runs on the stack and returns it
// (nil once it is deleted). id is the stack's id, which still answers
// after the stack is deleted.
func (k *Stack) waitSettled(ctx context.Context, c *clients, name, id string) (*cfntypes.Stack, error) {
	var st *cfntypes.Stack
	err := k.o.wait(ctx, fmt.Sprintf("stack %s in %s to finish its operation", name, c.region), func(ctx context.Context) (bool, error) {
		out, err := c.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(id)})
		if err = classify(err); errors.Is(err, cloud.ErrNotFound) {
			st = nil
			return true, nil
		} else if err != nil {
			return false, err
		}
		if len(out.Stacks) == 0 || out.Stacks[0].StackStatus == cfntypes.StackStatusDeleteComplete {
			st = nil
			return true, nil
		}
		st = &out.Stacks[0]
		return !inProgress(st.StackStatus), nil
	})
	return st, err
}

// Plan makes a change set of the stack's change (CREATE for a new stack,
// UPDATE otherwise), describes it, and deletes it again, with the empty
// stack a CREATE change set makes. A stack at the unit's token and
// template plans none, or start when its instances are stopped.
func (k *Stack) Plan(ctx context.Context, u deploy.Unit) (deploy.UnitPlan, error) {
	sp, err := specOf(u)
	if err != nil {
		return deploy.UnitPlan{}, err
	}
	c, err := k.cc.region(u.Region)
	if err != nil {
		return deploy.UnitPlan{}, err
	}
	st, err := describe(ctx, c, sp.stack)
	if err != nil {
		return deploy.UnitPlan{}, err
	}
	switch {
	case st != nil && inProgress(st.StackStatus):
		return deploy.UnitPlan{}, cloud.Mark(fmt.Errorf("stack %s in %s is %s; plan again when it is done", sp.stack, c.region, st.StackStatus), cloud.ErrNotYet)
	case st != nil && failedCreate(st.StackStatus):
		return deploy.UnitPlan{Action: deploy.ActionReplace, Changes: []string{
			fmt.Sprintf("stack %s failed to create (%s: %s); it is deleted and made again", sp.stack, st.StackStatus, aws.ToString(st.StackStatusReason)),
		}}, nil
	case st != nil && st.StackStatus == cfntypes.StackStatusDeleteFailed:
		return deploy.UnitPlan{}, cloud.Mark(fmt.Errorf("stack %s in %s is DELETE_FAILED (%s); destroy it first", sp.stack, c.region, aws.ToString(st.StackStatusReason)), cloud.ErrInvalid)
	case st != nil && st.StackStatus == cfntypes.StackStatusUpdateRollbackFailed:
		return deploy.UnitPlan{}, cloud.Mark(fmt.Errorf("stack %s in %s is UPDATE_ROLLBACK_FAILED (%s); continue its rollback in CloudFormation first", sp.stack, c.region, aws.ToString(st.StackStatusReason)), cloud.ErrInvalid)
	}
	exists := st != nil && st.StackStatus != cfntypes.StackStatusReviewInProgress
	if exists && k.atSpec(st, u, sp) {
		var changes []string
		if aws.ToBool(st.EnableTerminationProtection) != u.Protect {
			changes = append(changes, fmt.Sprintf("termination protection %s", onOff(u.Protect)))
		}
		res, err := listResources(ctx, c, sp.stack)
		if err != nil {
			return deploy.UnitPlan{}, err
		}
		if n, err := k.untagged(ctx, c, res, u.Tags); err != nil {
			return deploy.UnitPlan{}, err
		} else if n > 0 {
			changes = append(changes, fmt.Sprintf("add the deployment's tags to %d resources CloudFormation did not tag", n))
		}
		state, _, err := k.compute(ctx, c, res)
		if err != nil {
			return deploy.UnitPlan{}, err
		}
		if state == deploy.UnitStopped {
			return deploy.UnitPlan{Action: deploy.ActionStart, Changes: append(changes, "start the stack's instances")}, nil
		}
		if len(changes) > 0 {
			return deploy.UnitPlan{Action: deploy.ActionUpdate, Changes: changes}, nil
		}
		return deploy.UnitPlan{Action: deploy.ActionNone}, nil
	}

	csType := cfntypes.ChangeSetTypeCreate
	action := deploy.ActionCreate
	var changes []string
	if exists {
		csType, action = cfntypes.ChangeSetTypeUpdate, deploy.ActionUpdate
		changes = k.specChanges(ctx, c, st, sp)
	}
	cs, err := k.makeChangeSet(ctx, c, sp, csType)
	if err != nil {
		return deploy.UnitPlan{}, err
	}
	changes = append(changes, describeChanges(cs)...)
	if cs.Status == cfntypes.ChangeSetStatusFailed {
		changes = append(changes, "CloudFormation: "+aws.ToString(cs.StatusReason))
	}
	// Only planning: the change set goes, and so does the empty stack a
	// CREATE change set made (unless another change set waits on it).
	if err := k.dropChangeSet(ctx, c, sp); err != nil {
		return deploy.UnitPlan{}, err
	}
	return deploy.UnitPlan{Action: action, Changes: changes}, nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// atSpec reports whether the stack is up at the unit's token and template.
func (k *Stack) atSpec(st *cfntypes.Stack, u deploy.Unit, sp *spec) bool {
	tags := tagMap(st.Tags)
	return up(st.StackStatus) && tags[tagToken] == u.Token && tags[tagTemplate] == sp.digest[:16]
}

// specChanges says, for a plan, how the spec differs from the stack: the
// template, the parameters kiln may show (NoEcho ones are masked by
// CloudFormation and never shown), the token.
func (k *Stack) specChanges(ctx context.Context, c *clients, st *cfntypes.Stack, sp *spec) []string {
	var out []string
	tags := tagMap(st.Tags)
	if tags[tagTemplate] != sp.digest[:16] {
		out = append(out, fmt.Sprintf("template %s changed (sha256 %s… -> %s…)", sp.file, orNone(tags[tagTemplate]), sp.digest[:16]))
	}
	was := map[string]string{}
	for _, p := range st.Parameters {
		was[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	for _, p := range slices.Sorted(maps.Keys(sp.public)) {
		if old, ok := was[p]; !ok || old != sp.public[p] {
			out = append(out, fmt.Sprintf("parameter %s: %s -> %s", p, orNone(old), sp.public[p]))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(sp.noEcho)) {
		out = append(out, fmt.Sprintf("parameter %s (NoEcho) is passed again; its value is not shown", p))
	}
	if old := tags[tagToken]; old != "" && old != sp.tags[tagToken] {
		out = append(out, fmt.Sprintf("unit token %s -> %s", old, sp.tags[tagToken]))
	}
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// describeChanges lists a change set's resource changes for people.
func describeChanges(cs *cloudformation.DescribeChangeSetOutput) []string {
	var out []string
	for _, ch := range cs.Changes {
		rc := ch.ResourceChange
		if rc == nil {
			continue
		}
		line := fmt.Sprintf("%s %s %s", strings.ToLower(string(rc.Action)), aws.ToString(rc.ResourceType), aws.ToString(rc.LogicalResourceId))
		if rc.Replacement != "" && rc.Replacement != cfntypes.ReplacementFalse {
			line += fmt.Sprintf(" (replacement: %s)", strings.ToLower(string(rc.Replacement)))
		}
		out = append(out, line)
	}
	return out
}
