package aws

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

func TestPermissionDiff(t *testing.T) {
	org := "arn:aws:organizations::111111111111:organization/o-abc"
	ou := "arn:aws:organizations::111111111111:ou/o-abc/ou-1"
	tests := []struct {
		name        string
		cur, want   cloud.LaunchPermissions
		add, remove string
	}{
		{"nothing to do", cloud.LaunchPermissions{Accounts: []string{"111111111111"}}, cloud.LaunchPermissions{Accounts: []string{"111111111111"}}, "", ""},
		{"make public", cloud.LaunchPermissions{}, cloud.LaunchPermissions{Public: true}, "group:all", ""},
		{"replace everything", cloud.LaunchPermissions{Public: true, Accounts: []string{"111111111111"}, Organizations: []string{org}},
			cloud.LaunchPermissions{Accounts: []string{"222222222222"}, OrganizationalUnits: []string{ou}},
			"ou:" + ou + " user:222222222222", "group:all org:" + org + " user:111111111111"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			add, remove := permissionDiff(tt.cur, tt.want)
			if got := permString(add); got != tt.add {
				t.Errorf("add %q, want %q", got, tt.add)
			}
			if got := permString(remove); got != tt.remove {
				t.Errorf("remove %q, want %q", got, tt.remove)
			}
		})
	}
}

func permString(ps []ec2types.LaunchPermission) string {
	var out []string
	for _, p := range ps {
		switch {
		case p.Group != "":
			out = append(out, "group:"+string(p.Group))
		case p.UserId != nil:
			out = append(out, "user:"+aws.ToString(p.UserId))
		case p.OrganizationArn != nil:
			out = append(out, "org:"+aws.ToString(p.OrganizationArn))
		case p.OrganizationalUnitArn != nil:
			out = append(out, "ou:"+aws.ToString(p.OrganizationalUnitArn))
		}
	}
	return strings.Join(out, " ")
}

func TestCheckPermissions(t *testing.T) {
	tests := []struct {
		p    cloud.LaunchPermissions
		want string
	}{
		{cloud.LaunchPermissions{Accounts: []string{"12345"}}, `account "12345"`},
		{cloud.LaunchPermissions{Organizations: []string{"o-abc"}}, `organization "o-abc"`},
		{cloud.LaunchPermissions{OrganizationalUnits: []string{"ou-1"}}, `organizational unit "ou-1"`},
		{cloud.LaunchPermissions{Public: true, Accounts: []string{"123456789012"}}, ""},
	}
	for _, tt := range tests {
		err := checkPermissions(tt.p)
		if tt.want == "" {
			if err != nil {
				t.Errorf("checkPermissions(%+v) = %v", tt.p, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("checkPermissions(%+v) = %v, want an error naming %s", tt.p, err, tt.want)
		}
	}
}
