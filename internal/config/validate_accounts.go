package config

import (
	"fmt"
	"slices"
)

// checkPublishAccounts checks backend.aws.publish_accounts: roles in
// allowed accounts, known use cases and regions, and no use case published
// into two accounts in one region.
func (k *checker) checkPublishAccounts() {
	a := k.c.Backend.AWS
	const p = "backend.aws.publish_accounts"
	for i, pa := range a.PublishAccounts {
		ip := fmt.Sprintf("%s[%d]", p, i)
		acct := pa.Account()
		switch {
		case pa.RoleARN == "":
			k.errorf(ip+".role_arn", "missing; give the ARN of the role kiln assumes in the account, e.g. arn:aws:iam::210987654321:role/kiln-publish")
		case acct == "":
			k.errorf(ip+".role_arn", "%q is not an IAM role ARN such as arn:aws:iam::210987654321:role/kiln-publish", pa.RoleARN)
		case !slices.Contains(a.AllowedAccounts, acct):
			k.errorf(ip+".role_arn", "account %s is not in backend.aws.allowed_accounts; every account kiln acts in must be listed there", acct)
		}
		if len(pa.ExternalID) > 1224 {
			k.errorf(ip+".external_id", "is %d characters long; AssumeRole takes at most 1224", len(pa.ExternalID))
		}
		k.checkList(ip+".use_cases", pa.UseCases, func(u string) string {
			if _, ok := k.c.UseCases[u]; !ok {
				return fmt.Sprintf("use case %q is not defined; known: %s", u, joinAnd(k.c.UseCaseNames()))
			}
			return ""
		})
		k.checkList(ip+".regions", pa.Regions, func(r string) string {
			if !slices.Contains(k.c.Regions, r) {
				return fmt.Sprintf("region %q is not among regions %s", r, k.regionList())
			}
			return ""
		})
	}
	// One account per use case and region: a release copy lives in one
	// place, and the manifest names one image per region.
	for _, name := range k.c.UseCaseNames() {
		for _, r := range k.c.Regions {
			first := -1
			for i, pa := range a.PublishAccounts {
				if !pa.covers(name, r) {
					continue
				}
				if first >= 0 {
					k.errorf(fmt.Sprintf("%s[%d]", p, i), "use case %s in %s is already published into %s by publish_accounts[%d]; each use case and region goes to one account",
						name, r, a.PublishAccounts[first].Account(), first)
					return
				}
				first = i
			}
		}
	}
}
