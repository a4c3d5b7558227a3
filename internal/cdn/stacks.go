package cdn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/wafv2"
	waftypes "github.com/aws/aws-sdk-go-v2/service/wafv2/types"
	"github.com/aws/smithy-go"

	"github.com/kiln-images/kiln/internal/distribute/s3store"
)

// Stacks plans and deploys a project's two stacks.
type Stacks struct {
	Spec Spec
	// CFN returns the CloudFormation client of a region.
	CFN        func(region string) *cloudformation.Client
	WAF        *wafv2.Client      // us-east-1
	CloudFront *cloudfront.Client // us-east-1 (global)
	Log        *slog.Logger
	Poll       time.Duration // first pause of waits; default 10s
	Timeout    time.Duration // one stack's deployment; default 60m (CloudFront takes minutes)
	// Hook is called at each step boundary (the crash harness).
	Hook func(event string)
}

// NewStacks returns the stacks of spec with clients made from cfg.
func NewStacks(cfg aws.Config, spec Spec, log *slog.Logger) *Stacks {
	global := cfg.Copy()
	global.Region = FirewallRegion
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stacks{
		Spec: spec, Log: log,
		CFN: func(region string) *cloudformation.Client {
			c := cfg.Copy()
			c.Region = region
			return cloudformation.NewFromConfig(c)
		},
		WAF:        wafv2.NewFromConfig(global),
		CloudFront: cloudfront.NewFromConfig(global),
	}
}

// Report is what `kiln distribution plan|deploy` found and did.
type Report struct {
	Applied bool        `json:"applied"`
	Stacks  []StackPlan `json:"stacks"`
	// Known once deployed.
	WebACLArn      string `json:"web_acl_arn,omitempty"`
	DistributionID string `json:"distribution_id,omitempty"`
	URL            string `json:"url,omitempty"`
	// Problems the read-back of the deployed web ACL found.
	Problems []string `json:"problems"`
}

// StackPlan is one stack's change set.
type StackPlan struct {
	Name      string   `json:"name"`
	Region    string   `json:"region"`
	Status    string   `json:"status"` // the stack's, before; "absent" for none
	ChangeSet string   `json:"change_set,omitempty"`
	Type      string   `json:"type"` // CREATE or UPDATE
	Changes   []Change `json:"changes"`
	Note      string   `json:"note,omitempty"`
	Executed  bool     `json:"executed"`
}

// Change is one resource change of a change set.
type Change struct {
	Action      string `json:"action"`
	LogicalID   string `json:"logical_id"`
	Type        string `json:"type"`
	Replacement string `json:"replacement,omitempty"`
}

func (s *Stacks) hook(e string) {
	if s.Hook != nil {
		s.Hook(e)
	}
}

func (s *Stacks) poll() time.Duration {
	if s.Poll > 0 {
		return s.Poll
	}
	return 10 * time.Second
}

func (s *Stacks) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return 60 * time.Minute
}

// pendingACL stands for the web ACL's ARN in the site's planned change
// set until the firewall exists.
const pendingACL = "arn:aws:wafv2:us-east-1:000000000000:global/webacl/pending-firewall-deployment/00000000-0000-0000-0000-000000000000"

// Plan makes a change set for each stack and describes it; nothing is
// executed. Before the firewall exists the site's change set is made
// with a placeholder for the web ACL's ARN, described, and removed:
// deploy makes it again with the real one.
func (s *Stacks) Plan(ctx context.Context) (*Report, error) {
	if err := s.Spec.Check(); err != nil {
		return nil, err
	}
	rep := &Report{Stacks: []StackPlan{}, Problems: []string{}}
	fw, err := s.changeSet(ctx, s.Spec.FirewallStack(), FirewallRegion, s.Spec.FirewallTemplate(), nil)
	if err != nil {
		return rep, err
	}
	rep.Stacks = append(rep.Stacks, fw.plan)
	arn, err := s.webACL(ctx)
	if err != nil {
		return rep, err
	}
	placeholder := arn == ""
	if placeholder {
		arn = pendingACL
	}
	site, err := s.changeSet(ctx, s.Spec.SiteStack(), s.Spec.Region, s.Spec.SiteTemplate(), map[string]string{"WebACLArn": arn})
	if err != nil {
		return rep, err
	}
	if placeholder {
		site.plan.Note = "the web ACL's ARN is known once the firewall stack is deployed; deploy makes this change set again with it"
		if site.plan.ChangeSet != "" {
			if site.plan.Status == "absent" {
				// The change set made the stack; it goes with it.
				if err := s.removeEmptyStack(ctx, s.CFN(site.region), site.stack); err != nil {
					return rep, err
				}
			} else {
				s.deleteChangeSet(ctx, site)
			}
			site.plan.ChangeSet = ""
		}
	} else {
		rep.WebACLArn = arn
	}
	rep.Stacks = append(rep.Stacks, site.plan)
	return rep, nil
}

// Deploy executes the firewall's change set, reads the web ACL back,
// then makes and executes the site's with its ARN. Reruns converge: a
// stack already as its template describes has no change to execute.
func (s *Stacks) Deploy(ctx context.Context) (*Report, error) {
	if err := s.Spec.Check(); err != nil {
		return nil, err
	}
	rep := &Report{Applied: true, Stacks: []StackPlan{}, Problems: []string{}}
	fw, err := s.changeSet(ctx, s.Spec.FirewallStack(), FirewallRegion, s.Spec.FirewallTemplate(), nil)
	if err != nil {
		return rep, err
	}
	if err := s.execute(ctx, fw); err != nil {
		rep.Stacks = append(rep.Stacks, fw.plan)
		return rep, err
	}
	rep.Stacks = append(rep.Stacks, fw.plan)
	if rep.WebACLArn, err = s.webACL(ctx); err != nil {
		return rep, err
	}
	if rep.WebACLArn == "" {
		return rep, fmt.Errorf("the firewall stack %s is deployed but web ACL %s is not in WAF (CLOUDFRONT, %s); the site was not deployed without it",
			s.Spec.FirewallStack(), s.Spec.WebACLName(), FirewallRegion)
	}
	if rep.Problems, err = s.checkWebACL(ctx); err != nil {
		rep.Problems = []string{}
		return rep, err
	}
	site, err := s.changeSet(ctx, s.Spec.SiteStack(), s.Spec.Region, s.Spec.SiteTemplate(), map[string]string{"WebACLArn": rep.WebACLArn})
	if err != nil {
		return rep, err
	}
	err = s.execute(ctx, site)
	rep.Stacks = append(rep.Stacks, site.plan)
	if err != nil {
		return rep, err
	}
	if rep.DistributionID, err = s3store.FindDistribution(ctx, s.CloudFront, s.Spec.Project); err != nil {
		return rep, err
	}
	if rep.DistributionID != "" {
		d, err := s.CloudFront.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(rep.DistributionID)})
		if err != nil {
			return rep, fmt.Errorf("read CloudFront distribution %s: %w", rep.DistributionID, err)
		}
		rep.URL = "https://" + aws.ToString(d.Distribution.DomainName)
	}
	return rep, nil
}

// changeSet is a stack's change set, made or found.
type changeSet struct {
	plan   StackPlan
	stack  string
	region string
	none   bool // the stack is as the template says: nothing to execute
}

// changeSet makes the change set of a stack for a template and
// parameters, named by their hash, so a second plan finds the first one's
// and deploy executes what plan showed.
func (s *Stacks) changeSet(ctx context.Context, stack, region string, tmpl Template, params map[string]string) (*changeSet, error) {
	cfn := s.CFN(region)
	cs := &changeSet{stack: stack, region: region, plan: StackPlan{Name: stack, Region: region, Status: "absent", Type: "CREATE", Changes: []Change{}}}
	out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	switch {
	case err != nil && !isMissingStack(err):
		return cs, fmt.Errorf("describe stack %s in %s: %w", stack, region, err)
	case err == nil && len(out.Stacks) == 1:
		st := out.Stacks[0].StackStatus
		cs.plan.Status = string(st)
		switch {
		case st == cfntypes.StackStatusReviewInProgress:
			// Made by a change set never executed: still a creation.
		case st == cfntypes.StackStatusRollbackComplete || st == cfntypes.StackStatusRollbackFailed:
			return cs, fmt.Errorf("stack %s in %s is %s (its creation failed: %s); delete it (aws cloudformation delete-stack --stack-name %s --region %s) and deploy again",
				stack, region, st, aws.ToString(out.Stacks[0].StackStatusReason), stack, region)
		case strings.HasSuffix(string(st), "_IN_PROGRESS"):
			return cs, fmt.Errorf("stack %s in %s is %s: wait for it to finish and run again", stack, region, st)
		default:
			cs.plan.Type = "UPDATE"
		}
	}
	body := string(tmpl.JSON())
	var cfnParams []cfntypes.Parameter
	h := sha256.New()
	h.Write([]byte(cs.plan.Type + "\n" + body))
	for _, k := range slices.Sorted(maps.Keys(params)) {
		cfnParams = append(cfnParams, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(params[k])})
		fmt.Fprintf(h, "\n%s=%s", k, params[k])
	}
	var tags []cfntypes.Tag
	for _, k := range slices.Sorted(maps.Keys(s.Spec.Tags)) {
		tags = append(tags, cfntypes.Tag{Key: aws.String(k), Value: aws.String(s.Spec.Tags[k])})
		fmt.Fprintf(h, "\ntag %s=%s", k, s.Spec.Tags[k])
	}
	cs.plan.ChangeSet = "kiln-" + hex.EncodeToString(h.Sum(nil))[:20]
	// An earlier plan made it: describe that one rather than make it again
	// (which AWS refuses, and moto answers with a second stack).
	if cs.plan.Status != "absent" {
		found, err := s.hasChangeSet(ctx, cfn, stack, cs.plan.ChangeSet)
		if err != nil {
			return cs, err
		}
		if found {
			return cs, s.describe(ctx, cs)
		}
		// A stack only a change set of another template made holds
		// nothing: remove it, and make this change set afresh.
		if cs.plan.Status == string(cfntypes.StackStatusReviewInProgress) {
			if err := s.removeEmptyStack(ctx, cfn, stack); err != nil {
				return cs, err
			}
			cs.plan.Status = "absent"
		}
	}
	s.hook("distribution change set " + stack)
	_, err = cfn.CreateChangeSet(ctx, &cloudformation.CreateChangeSetInput{
		StackName: aws.String(stack), ChangeSetName: aws.String(cs.plan.ChangeSet),
		ChangeSetType: cfntypes.ChangeSetType(cs.plan.Type), TemplateBody: aws.String(body),
		Parameters: cfnParams, Tags: tags,
		Description: aws.String("kiln distribution of " + s.Spec.Project),
	})
	var exists *cfntypes.AlreadyExistsException
	switch {
	case errors.As(err, &exists):
		// Made by an earlier plan with the same template: describe it.
	case noChanges(err):
		cs.none, cs.plan.ChangeSet = true, ""
		cs.plan.Note = "no changes: the stack is as its template describes"
		return cs, nil
	case err != nil:
		return cs, fmt.Errorf("create change set %s of stack %s in %s: %w", cs.plan.ChangeSet, stack, region, err)
	}
	return cs, s.describe(ctx, cs)
}

// removeEmptyStack deletes a stack in REVIEW_IN_PROGRESS (made by a
// change set never executed: no resources) and waits until it is gone.
func (s *Stacks) removeEmptyStack(ctx context.Context, cfn *cloudformation.Client, stack string) error {
	if _, err := cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(stack)}); err != nil {
		return fmt.Errorf("remove the unexecuted stack %s: %w", stack, err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
		if isMissingStack(err) || (err == nil && (len(out.Stacks) == 0 || out.Stacks[0].StackStatus == cfntypes.StackStatusDeleteComplete)) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("describe stack %s: %w", stack, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stack %s: still %s 5m after its deletion", stack, out.Stacks[0].StackStatus)
		}
		if err := sleep(ctx, s.poll()); err != nil {
			return err
		}
	}
}

// hasChangeSet reports whether stack has a change set called name.
func (s *Stacks) hasChangeSet(ctx context.Context, cfn *cloudformation.Client, stack, name string) (bool, error) {
	p := cloudformation.NewListChangeSetsPaginator(cfn, &cloudformation.ListChangeSetsInput{StackName: aws.String(stack)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return false, fmt.Errorf("list change sets of %s: %w", stack, err)
		}
		for _, c := range page.Summaries {
			if aws.ToString(c.ChangeSetName) == name {
				return true, nil
			}
		}
	}
	return false, nil
}

// describe waits for a change set to be made and lists its changes.
func (s *Stacks) describe(ctx context.Context, cs *changeSet) error {
	cfn := s.CFN(cs.region)
	var next *string
	deadline := time.Now().Add(10 * time.Minute)
	for {
		out, err := cfn.DescribeChangeSet(ctx, &cloudformation.DescribeChangeSetInput{
			StackName: aws.String(cs.stack), ChangeSetName: aws.String(cs.plan.ChangeSet), NextToken: next,
		})
		if err != nil {
			return fmt.Errorf("describe change set %s of %s: %w", cs.plan.ChangeSet, cs.stack, err)
		}
		switch out.Status {
		case cfntypes.ChangeSetStatusCreatePending, cfntypes.ChangeSetStatusCreateInProgress:
			if time.Now().After(deadline) {
				return fmt.Errorf("change set %s of %s: still %s after 10m", cs.plan.ChangeSet, cs.stack, out.Status)
			}
			if err := sleep(ctx, s.poll()); err != nil {
				return err
			}
			continue
		case cfntypes.ChangeSetStatusFailed:
			reason := aws.ToString(out.StatusReason)
			if strings.Contains(reason, "didn't contain changes") || strings.Contains(reason, "No updates") {
				s.deleteChangeSet(ctx, cs)
				cs.none, cs.plan.ChangeSet = true, ""
				cs.plan.Note = "no changes: the stack is as its template describes"
				return nil
			}
			return fmt.Errorf("change set %s of %s failed: %s", cs.plan.ChangeSet, cs.stack, reason)
		}
		if out.ExecutionStatus == cfntypes.ExecutionStatusExecuteComplete {
			cs.plan.Note = "already executed"
			cs.none = true
		}
		for _, c := range out.Changes {
			if rc := c.ResourceChange; rc != nil {
				cs.plan.Changes = append(cs.plan.Changes, Change{
					Action: string(rc.Action), LogicalID: aws.ToString(rc.LogicalResourceId),
					Type: aws.ToString(rc.ResourceType), Replacement: string(rc.Replacement),
				})
			}
		}
		if next = out.NextToken; next == nil {
			return nil
		}
	}
}

func (s *Stacks) deleteChangeSet(ctx context.Context, cs *changeSet) {
	s.CFN(cs.region).DeleteChangeSet(context.WithoutCancel(ctx), &cloudformation.DeleteChangeSetInput{
		StackName: aws.String(cs.stack), ChangeSetName: aws.String(cs.plan.ChangeSet),
	})
}

// execute executes a change set and waits for the stack.
func (s *Stacks) execute(ctx context.Context, cs *changeSet) error {
	if cs.none {
		return nil
	}
	cfn := s.CFN(cs.region)
	s.hook("distribution execute " + cs.stack)
	_, err := cfn.ExecuteChangeSet(ctx, &cloudformation.ExecuteChangeSetInput{
		StackName: aws.String(cs.stack), ChangeSetName: aws.String(cs.plan.ChangeSet),
	})
	if err != nil {
		return fmt.Errorf("execute change set %s of %s in %s: %w", cs.plan.ChangeSet, cs.stack, cs.region, err)
	}
	cs.plan.Executed = true
	deadline := time.Now().Add(s.timeout())
	for pause := s.poll(); ; pause = min(2*pause, 6*s.poll()) {
		out, err := cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(cs.stack)})
		if err != nil {
			return fmt.Errorf("describe stack %s: %w", cs.stack, err)
		}
		st := out.Stacks[0].StackStatus
		switch {
		case st == cfntypes.StackStatusCreateComplete || st == cfntypes.StackStatusUpdateComplete:
			s.hook("distribution executed " + cs.stack)
			s.Log.Info("stack deployed", "stack", cs.stack, "region", cs.region, "status", st)
			return nil
		case strings.Contains(string(st), "ROLLBACK") || strings.HasSuffix(string(st), "_FAILED"):
			if strings.HasSuffix(string(st), "_IN_PROGRESS") {
				break // wait for the rollback to end
			}
			return fmt.Errorf("stack %s in %s: %s: %s", cs.stack, cs.region, st, aws.ToString(out.Stacks[0].StackStatusReason))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stack %s in %s: still %s after %s", cs.stack, cs.region, st, s.timeout())
		}
		if err := sleep(ctx, pause); err != nil {
			return err
		}
	}
}

// webACL finds the firewall's web ACL: the stack's output, or where a
// stack lost its outputs, WAF by the ACL's name. "" when there is none.
func (s *Stacks) webACL(ctx context.Context) (string, error) {
	out, err := s.CFN(FirewallRegion).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(s.Spec.FirewallStack())})
	if err == nil && len(out.Stacks) == 1 {
		for _, o := range out.Stacks[0].Outputs {
			if aws.ToString(o.OutputKey) == "WebACLArn" {
				return aws.ToString(o.OutputValue), nil
			}
		}
	}
	acl, err := s.findACL(ctx)
	if err != nil || acl == nil {
		return "", err
	}
	return aws.ToString(acl.ARN), nil
}

func (s *Stacks) findACL(ctx context.Context) (*waftypes.WebACLSummary, error) {
	in := &wafv2.ListWebACLsInput{Scope: waftypes.ScopeCloudfront}
	for {
		out, err := s.WAF.ListWebACLs(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list web ACLs (CLOUDFRONT, %s): %w", FirewallRegion, err)
		}
		for _, a := range out.WebACLs {
			if aws.ToString(a.Name) == s.Spec.WebACLName() {
				return &a, nil
			}
		}
		if out.NextMarker == nil || len(out.WebACLs) == 0 {
			return nil, nil
		}
		in.NextMarker = out.NextMarker
	}
}

// checkWebACL reads the deployed web ACL back and says where it differs
// from the spec: rules changed behind the stack's back.
func (s *Stacks) checkWebACL(ctx context.Context) ([]string, error) {
	sum, err := s.findACL(ctx)
	if err != nil {
		return nil, err
	}
	if sum == nil {
		return []string{"web ACL " + s.Spec.WebACLName() + " not found"}, nil
	}
	out, err := s.WAF.GetWebACL(ctx, &wafv2.GetWebACLInput{Name: sum.Name, Id: sum.Id, Scope: waftypes.ScopeCloudfront})
	if err != nil {
		return nil, fmt.Errorf("read web ACL %s: %w", s.Spec.WebACLName(), err)
	}
	return CheckRules(s.Spec, out.WebACL.Rules), nil
}

// CheckRules compares a web ACL's rules with the spec.
func CheckRules(spec Spec, rules []waftypes.Rule) []string {
	probs := []string{}
	byName := map[string]waftypes.Rule{}
	for _, r := range rules {
		byName[aws.ToString(r.Name)] = r
	}
	allow, ok := byName["allow-list"]
	if !ok || allow.Priority != 0 || allow.Action == nil || allow.Action.Allow == nil {
		probs = append(probs, "the allow-list is not the first rule, allowing")
	}
	rate, ok := byName["rate-limit"]
	switch {
	case !ok || rate.Statement == nil || rate.Statement.RateBasedStatement == nil:
		probs = append(probs, "no rate-based rule")
	default:
		rb := rate.Statement.RateBasedStatement
		if aws.ToInt64(rb.Limit) != int64(spec.Requests) || rb.EvaluationWindowSec != int64(spec.Window.Seconds()) {
			probs = append(probs, fmt.Sprintf("rate limit is %d per %ds, want %d per %ds", aws.ToInt64(rb.Limit), rb.EvaluationWindowSec, spec.Requests, int64(spec.Window.Seconds())))
		}
		if rate.Action == nil || rate.Action.Block == nil {
			probs = append(probs, "the rate-based rule does not block")
		}
	}
	bc, ok := byName["browser-check"]
	switch {
	case spec.BrowserCheck == "none" && ok:
		probs = append(probs, "a browser check where none is configured")
	case spec.BrowserCheck != "none" && (!ok || bc.Statement == nil || bc.Statement.NotStatement == nil):
		probs = append(probs, "no browser check kept off the command-line paths")
	}
	return probs
}

func isMissingStack(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && strings.Contains(api.ErrorMessage(), "does not exist")
}

// noChanges reports a CreateChangeSet refused for having nothing to change
// (moto refuses it so; AWS makes a FAILED change set instead).
func noChanges(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && (strings.Contains(api.ErrorMessage(), "didn't contain changes") || strings.Contains(api.ErrorMessage(), "No updates"))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
