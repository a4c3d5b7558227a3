package local

import (
	"regexp"
	"slices"

	"github.com/kiln-images/kiln/internal/cloud"
)

// The ARN forms AWS uses for organizations and organizational units; the
// local backend accepts the same so a config works with either backend.
var (
	orgARN = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$`)
	ouARN  = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$`)
)

// checkLaunchPermissions validates account ids and ARNs.
func checkLaunchPermissions(p cloud.LaunchPermissions) error {
	for _, a := range p.Accounts {
		if !isAccount(a) {
			return invalidf("launch permission account %q: want 12 digits", a)
		}
	}
	for _, o := range p.Organizations {
		if !orgARN.MatchString(o) {
			return invalidf("launch permission organization %q: want an ARN like arn:aws:organizations::123456789012:organization/o-abcdefghij", o)
		}
	}
	for _, o := range p.OrganizationalUnits {
		if !ouARN.MatchString(o) {
			return invalidf("launch permission organizational unit %q: want an ARN like arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34", o)
		}
	}
	return nil
}

// normalize sorts and deduplicates the lists, with nil for empty ones, so
// that stored and returned permissions compare equal.
func normalize(p cloud.LaunchPermissions) cloud.LaunchPermissions {
	set := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return slices.Compact(slices.Sorted(slices.Values(s)))
	}
	return cloud.LaunchPermissions{
		Public:              p.Public,
		Accounts:            set(p.Accounts),
		Organizations:       set(p.Organizations),
		OrganizationalUnits: set(p.OrganizationalUnits),
	}
}
