package aws

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
)

// LaunchPermissions returns who may launch the image: group all, account
// ids, organization and organizational unit ARNs.
func (b *Backend) LaunchPermissions(ctx context.Context, region, id string) (cloud.LaunchPermissions, error) {
	cur, err := b.launchPermissions(ctx, region, id)
	if err != nil {
		return cloud.LaunchPermissions{}, err
	}
	return toLaunchPermissions(cur), nil
}

func (b *Backend) launchPermissions(ctx context.Context, region, id string) ([]ec2types.LaunchPermission, error) {
	// Describe first: an absent image is then a clean ErrNotFound on every
	// endpoint (moto answers DescribeImageAttribute for one with a 500).
	if _, err := b.describeImage(ctx, region, id); err != nil {
		return nil, fmt.Errorf("launch permissions: %w", err)
	}
	c, err := b.clients.region(region)
	if err != nil {
		return nil, err
	}
	out, err := c.ec2.DescribeImageAttribute(ctx, &ec2.DescribeImageAttributeInput{
		ImageId:   aws.String(id),
		Attribute: ec2types.ImageAttributeNameLaunchPermission,
	})
	if err != nil {
		return nil, fmt.Errorf("launch permissions of %s in %s: %w", id, region, classify(err))
	}
	return out.LaunchPermissions, nil
}

func toLaunchPermissions(perms []ec2types.LaunchPermission) cloud.LaunchPermissions {
	var p cloud.LaunchPermissions
	for _, lp := range perms {
		switch {
		case lp.Group == ec2types.PermissionGroupAll:
			p.Public = true
		case aws.ToString(lp.UserId) != "":
			p.Accounts = append(p.Accounts, aws.ToString(lp.UserId))
		case aws.ToString(lp.OrganizationArn) != "":
			p.Organizations = append(p.Organizations, aws.ToString(lp.OrganizationArn))
		case aws.ToString(lp.OrganizationalUnitArn) != "":
			p.OrganizationalUnits = append(p.OrganizationalUnits, aws.ToString(lp.OrganizationalUnitArn))
		}
	}
	slices.Sort(p.Accounts)
	slices.Sort(p.Organizations)
	slices.Sort(p.OrganizationalUnits)
	return p
}

// permKey identifies one launch permission for set arithmetic.
type permKey struct{ kind, value string }

func permKeys(p cloud.LaunchPermissions) map[permKey]bool {
	m := map[permKey]bool{}
	if p.Public {
		m[permKey{"group", "all"}] = true
	}
	for _, a := range p.Accounts {
		m[permKey{"user", a}] = true
	}
	for _, o := range p.Organizations {
		m[permKey{"org", o}] = true
	}
	for _, u := range p.OrganizationalUnits {
		m[permKey{"ou", u}] = true
	}
	return m
}

func (k permKey) permission() ec2types.LaunchPermission {
	switch k.kind {
	case "group":
		return ec2types.LaunchPermission{Group: ec2types.PermissionGroupAll}
	case "user":
		return ec2types.LaunchPermission{UserId: aws.String(k.value)}
	case "org":
		return ec2types.LaunchPermission{OrganizationArn: aws.String(k.value)}
	default:
		return ec2types.LaunchPermission{OrganizationalUnitArn: aws.String(k.value)}
	}
}

// permissionDiff returns what to add to and remove from cur to make it want,
// each sorted for stable requests.
func permissionDiff(cur, want cloud.LaunchPermissions) (add, remove []ec2types.LaunchPermission) {
	c, w := permKeys(cur), permKeys(want)
	var addK, remK []permKey
	for k := range w {
		if !c[k] {
			addK = append(addK, k)
		}
	}
	for k := range c {
		if !w[k] {
			remK = append(remK, k)
		}
	}
	byKey := func(a, b permKey) int { return strings.Compare(a.kind+a.value, b.kind+b.value) }
	slices.SortFunc(addK, byKey)
	slices.SortFunc(remK, byKey)
	for _, k := range addK {
		add = append(add, k.permission())
	}
	for _, k := range remK {
		remove = append(remove, k.permission())
	}
	return add, remove
}

// checkPermissions refuses launch permissions EC2 would refuse, naming the
// value.
func checkPermissions(p cloud.LaunchPermissions) error {
	for _, a := range p.Accounts {
		if len(a) != 12 || strings.Trim(a, "0123456789") != "" {
			return cloud.Mark(fmt.Errorf("account %q: want a 12-digit AWS account id", a), cloud.ErrInvalid)
		}
	}
	for _, o := range p.Organizations {
		if !strings.HasPrefix(o, "arn:") || !strings.Contains(o, ":organization/") {
			return cloud.Mark(fmt.Errorf("organization %q: want an organization ARN (arn:aws:organizations::ACCOUNT:organization/o-...)", o), cloud.ErrInvalid)
		}
	}
	for _, u := range p.OrganizationalUnits {
		if !strings.HasPrefix(u, "arn:") || !strings.Contains(u, ":ou/") {
			return cloud.Mark(fmt.Errorf("organizational unit %q: want an OU ARN (arn:aws:organizations::ACCOUNT:ou/o-.../ou-...)", u), cloud.ErrInvalid)
		}
	}
	return nil
}

// SetLaunchPermissions makes the image's launch permissions exactly p,
// adding and removing only the difference. Making an image public where
// image block public access is on fails with ErrPublicAccessBlocked.
func (b *Backend) SetLaunchPermissions(ctx context.Context, region, id string, p cloud.LaunchPermissions) error {
	if err := checkPermissions(p); err != nil {
		return fmt.Errorf("set launch permissions of %s in %s: %w", id, region, err)
	}
	if err := b.CheckAccount(ctx); err != nil {
		return err
	}
	c, err := b.clients.region(region)
	if err != nil {
		return err
	}
	cur, err := b.launchPermissions(ctx, region, id)
	if err != nil {
		return err
	}
	add, remove := permissionDiff(toLaunchPermissions(cur), p)
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	if p.Public && !toLaunchPermissions(cur).Public {
		blocked, err := b.PublicAccessBlocked(ctx, region)
		if err != nil {
			return fmt.Errorf("make %s public in %s: %w", id, region, err)
		}
		if blocked {
			return cloud.Mark(fmt.Errorf("make %s public in %s: image block public access is on in %s; turn it off for the account in that region (ec2 disable-image-block-public-access) or publish to accounts/organizations instead",
				id, region, region), cloud.ErrPublicAccessBlocked)
		}
	}
	_, err = c.ec2.ModifyImageAttribute(ctx, &ec2.ModifyImageAttributeInput{
		ImageId:          aws.String(id),
		LaunchPermission: &ec2types.LaunchPermissionModifications{Add: add, Remove: remove},
	})
	if err != nil {
		return fmt.Errorf("set launch permissions of %s in %s: %w", id, region, classify(err))
	}
	b.log.Info("launch permissions set", "region", region, "image", id, "added", len(add), "removed", len(remove))
	return nil
}

// PublicAccessBlocked reports whether image block public access is on in
// region (state block-new-sharing).
func (b *Backend) PublicAccessBlocked(ctx context.Context, region string) (bool, error) {
	c, err := b.clients.region(region)
	if err != nil {
		return false, err
	}
	out, err := c.ec2.GetImageBlockPublicAccessState(ctx, &ec2.GetImageBlockPublicAccessStateInput{})
	if err != nil {
		return false, fmt.Errorf("image block public access state in %s: %w", region, classify(err))
	}
	return aws.ToString(out.ImageBlockPublicAccessState) != "unblocked", nil
}

// maxPublicDeprecation is how far out a public image's deprecation time
// may lie (EC2's limit for public AMIs).
const maxPublicDeprecation = 2 * 365 * 24 * time.Hour

// SetDeprecation sets the image's deprecation time; the zero time removes
// it. A public image may not be deprecated more than two years out.
func (b *Backend) SetDeprecation(ctx context.Context, region, id string, t time.Time) error {
	if err := b.CheckAccount(ctx); err != nil {
		return err
	}
	c, err := b.clients.region(region)
	if err != nil {
		return err
	}
	im, err := b.describeImage(ctx, region, id)
	if err != nil {
		return fmt.Errorf("set deprecation: %w", err)
	}
	if t.IsZero() {
		if _, err := c.ec2.DisableImageDeprecation(ctx, &ec2.DisableImageDeprecationInput{ImageId: aws.String(id)}); err != nil {
			return fmt.Errorf("remove deprecation of %s in %s: %w", id, region, classify(err))
		}
		return nil
	}
	if aws.ToBool(im.Public) && t.After(time.Now().Add(maxPublicDeprecation)) {
		return cloud.Mark(fmt.Errorf("deprecate public image %s in %s at %s: EC2 allows at most 2 years ahead for public images (until %s)",
			id, region, t.UTC().Format(time.RFC3339), time.Now().Add(maxPublicDeprecation).UTC().Format(time.DateOnly)), cloud.ErrInvalid)
	}
	_, err = c.ec2.EnableImageDeprecation(ctx, &ec2.EnableImageDeprecationInput{
		ImageId:     aws.String(id),
		DeprecateAt: aws.Time(t.UTC()),
	})
	if err != nil {
		return fmt.Errorf("deprecate %s in %s at %s: %w", id, region, t.UTC().Format(time.RFC3339), classify(err))
	}
	return nil
}
