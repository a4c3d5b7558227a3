package config

import (
	"slices"
	"strings"
	"testing"
)

// distYAML publishes use case u into account 210987654321 in eu-west-1.
const distYAML = `project: demo
backend:
  type: aws
  aws:
    allowed_accounts: ["123456789012", "210987654321"]
    publish_accounts:
      - role_arn: arn:aws:iam::210987654321:role/kiln-publish
        use_cases: [u]
        regions: [eu-west-1]
regions: [us-east-1, eu-west-1]
use_cases:
  u:
    architectures: [x86_64]
    base: {ami: ami-12345678}
    tests: [t.sh]
  v:
    architectures: [x86_64]
    base: {ami: ami-12345678}
    tests: [t.sh]
`

func TestPublishAccountLocations(t *testing.T) {
	c, err := Parse("kiln.yaml", []byte(distYAML), newProject(t))
	if err != nil {
		t.Fatal(err)
	}
	u, v := c.UseCases["u"], c.UseCases["v"]
	if got := c.TargetRegions(u); !slices.Equal(got, []string{"us-east-1", "210987654321/eu-west-1"}) {
		t.Errorf("TargetRegions(u) = %v", got)
	}
	if got := c.TargetRegions(v); !slices.Equal(got, []string{"us-east-1", "eu-west-1"}) {
		t.Errorf("TargetRegions(v) = %v", got)
	}
	if got := c.Locations(); !slices.Equal(got, []string{"us-east-1", "eu-west-1", "210987654321/eu-west-1"}) {
		t.Errorf("Locations = %v", got)
	}
	if a, r := SplitLocation("210987654321/eu-west-1"); a != "210987654321" || r != "eu-west-1" || RegionOf("eu-west-1") != "eu-west-1" {
		t.Errorf("SplitLocation = %q, %q", a, r)
	}
}

func TestPublishAccountErrors(t *testing.T) {
	dir := newProject(t)
	replace := func(old, nw string) string {
		if !strings.Contains(distYAML, old) {
			t.Fatalf("distYAML lacks %q", old)
		}
		return strings.Replace(distYAML, old, nw, 1)
	}
	for _, tc := range []errorCase{
		{"account not allowed", replace(`["123456789012", "210987654321"]`, `["123456789012"]`), []string{
			`kiln.yaml:7:19: backend.aws.publish_accounts[0].role_arn: account 210987654321 is not in backend.aws.allowed_accounts; every account kiln acts in must be listed there`}},
		{"not a role", replace("role/kiln-publish", "user/kiln"), []string{
			`kiln.yaml:7:19: backend.aws.publish_accounts[0].role_arn: "arn:aws:iam::210987654321:user/kiln" is not an IAM role ARN such as arn:aws:iam::210987654321:role/kiln-publish`}},
		{"unknown use case", replace("use_cases: [u]", "use_cases: [w]"), []string{
			`kiln.yaml:8:21: backend.aws.publish_accounts[0].use_cases[0]: use case "w" is not defined; known: u and v`}},
		{"unknown region", replace("regions: [eu-west-1]\nregions", "regions: [eu-west-2]\nregions"), []string{
			`kiln.yaml:9:19: backend.aws.publish_accounts[0].regions[0]: region "eu-west-2" is not among regions [us-east-1 eu-west-1]`}},
		{"two accounts for one region", replace("        regions: [eu-west-1]\n", "        regions: [eu-west-1]\n      - role_arn: arn:aws:iam::123456789012:role/other\n"), []string{
			`kiln.yaml:10:9: backend.aws.publish_accounts[1]: use case u in eu-west-1 is already published into 210987654321 by publish_accounts[0]; each use case and region goes to one account`}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErrors(t, tc.doc, dir, tc.want) })
	}
}
