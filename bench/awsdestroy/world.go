package awsdestroy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/bench/awsrelease"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/teardown/teardowntest"
)

// Region is where the deployment runs.
const Region = "us-east-1"

// Scenario is the deployment torn down: the notebook-cluster deployment
// of the teardown checklist, six stacks deep (deployed base → pipeline →
// cluster → hub → auth → container, destroyed the other way), with
// buckets, repositories, volumes and snapshots around them: 199 resources
// of the deployment, 4 of them retained, and a neighbour deployment that
// must survive.
func Scenario() teardowntest.Scenario {
	return teardowntest.Scenario{
		Project: "grit", Deployment: "hub", Neighbour: "other", CostKey: "deployment_name",
		Units:    []string{"base", "pipeline", "cluster", "hub", "auth", "container"},
		Versions: 200, Markers: 50, Images: 2,
		Buckets: 20, Repositories: 20, Snapshots: 80, Volumes: 50, Protected: true,
	}
}

// KilnProject writes the kiln project of s (one stack unit per unit of s,
// each after the one before) into dir and returns its kiln.yaml.
func KilnProject(dir string, s teardowntest.Scenario, poll time.Duration) (string, error) {
	var units strings.Builder
	for i, u := range s.Units {
		after := ""
		if i > 0 {
			after = "after: [" + s.Units[i-1] + "], "
		}
		fmt.Fprintf(&units, "      %s: {%sstack: {template: stack.yaml}}\n", u, after)
	}
	files := map[string]string{
		"stack.yaml":    "Resources: {}\n",
		"tests/boot.sh": "#!/bin/sh\ntrue\n",
		"kiln.yaml": fmt.Sprintf(`project: %s
backend:
  type: aws
  aws:
    allowed_accounts: ["%s"]
    poll_interval: %s
regions: [%s]
cost_tag: {key: %s, value: %s}
use_cases:
  app:
    architectures: [x86_64]
    base: {ami: ami-0123456789abcdef0}
    tests: [tests/boot.sh]
deployments:
  %s:
    image: {use_case: app, id: ami-0123456789abcdef0}
    protect: %v
    units:
%s  %s:
    image: {use_case: app, id: ami-0123456789abcdef0}
    units:
      cluster: {stack: {template: stack.yaml}}
destroy: {retain: [log-group, user-pool], confirm_above: 1000, verify_timeout: 1m}
`, s.Project, awstest.Account, poll, Region, s.CostKey, s.Project, s.Deployment, s.Protected, units.String(), s.Neighbour),
	}
	return awsrelease.WriteProject(dir, files)
}

// Check reads the account straight from each service and says what of
// the deployment is left, or what retained or the neighbour's is lost.
func Check(ctx context.Context, motoURL string, seeded teardowntest.Seeded) error {
	after, err := teardowntest.NewAWS(motoURL, Region).Inventory(ctx)
	if err != nil {
		return err
	}
	var problems []string
	for _, r := range seeded.Gone {
		if slices.Contains(after, r) {
			problems = append(problems, "left: "+r)
		}
	}
	for _, r := range slices.Concat(seeded.Kept, seeded.Neighbour) {
		if !slices.Contains(after, r) {
			problems = append(problems, "lost: "+r)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("the teardown is wrong:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}
