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
	_, cur, err := b.launchPermissions(ctx, region, id)
	if err != nil {
		return cloud.LaunchPermissions{}, err
	}
	return toLaunchPermissions(cur), nil
}

// launchPermissions describes the image and reads its launch permissions,
// both at once. The description makes an absent image a clean ErrNotFound
// on every endpoint (moto answers DescribeImageAttribute for one with a
// 500, which the SDK would retry): when it says the image is absent, the
// attribute request is called off.
func (b *Backend) launchPermissions(ctx context.Context, region, id string) (ec2types.Image, []ec2types.LaunchPermission, error) {
	c, err := b.clients.region(region)
	if err != nil {
		return ec2types.Image{}, nil, err
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		im         ec2types.Image
		perms      []ec2types.LaunchPermission
		derr, aerr error
	)
	together(func() error {
		if im, derr = b.describeImage(ctx, region, id); derr != nil {
			cancel()
		}
		return nil
	}, func() error {
		out, err := c.ec2.DescribeImageAttribute(actx, &ec2.DescribeImageAttributeInput{
			ImageId:   aws.String(id),
			Attribute: ec2types.ImageAttributeNameLaunchPermission,
		})
		if err != nil {
			aerr = fmt.Errorf("launch permissions of %s in %s: %w", id, region, classify(err))
			return nil
		}
		perms = out.LaunchPermissions
		return nil
	})
	if derr != nil {
		return im, nil, fmt.Errorf("launch permissions: %w", derr)
	}
	return im, perms, aerr
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
	if err := b.checkLocation(ctx, region); err != nil {
		return err
	}
	c, err := b.clients.region(region)
	if err != nil {
		return err
	}
	// An image this backend made moments ago has no launch permissions
	// yet: no need to read them.
	var cur []ec2types.LaunchPermission
	if !b.unchanged(region, id) {
		if _, cur, err = b.launchPermissions(ctx, region, id); err != nil {
			return err
		}
	}
	add, remove := permissionDiff(toLaunchPermissions(cur), p)
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	if p.Public && !toLaunchPermissions(cur).Public {
		blocked, err := b.publicAccessBlockedRecently(ctx, region)
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
	b.changed(region, id)
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
	asked := time.Now()
	out, err := c.ec2.GetImageBlockPublicAccessState(ctx, &ec2.GetImageBlockPublicAccessStateInput{})
	if err != nil {
		return false, fmt.Errorf("image block public access state in %s: %w", region, classify(err))
	}
	blocked := aws.ToString(out.ImageBlockPublicAccessState) != "unblocked"
	b.mu.Lock()
	if blocked {
		delete(b.unblocked, region)
	} else {
		b.unblocked[region] = asked
	}
	b.mu.Unlock()
	return blocked, nil
}

// unblockedFor is how long an answer that image block public access is
// off in a region is taken as still true. The pipeline checks every region
// just before it makes images public, and SetLaunchPermissions checks its
// region again; within this time the second check reuses the first
// answer. The check is for a clear error before anything changes: EC2
// itself refuses to make an image public where the block is on.
const unblockedFor = time.Minute

// publicAccessBlockedRecently is PublicAccessBlocked, answered from an
// "off" answer younger than unblockedFor when there is one.
func (b *Backend) publicAccessBlockedRecently(ctx context.Context, region string) (bool, error) {
	b.mu.Lock()
	at, ok := b.unblocked[region]
	b.mu.Unlock()
	if ok && time.Since(at) < unblockedFor {
		return false, nil
	}
	return b.PublicAccessBlocked(ctx, region)
}

// maxPublicDeprecation is how far out a public image's deprecation time
// may lie (EC2's limit for public AMIs).
const maxPublicDeprecation = 2 * 365 * 24 * time.Hour

// SetDeprecation sets the image's deprecation time; the zero time removes
// it. A public image may not be deprecated more than two years out.
func (b *Backend) SetDeprecation(ctx context.Context, region, id string, t time.Time) error {
	if err := b.checkLocation(ctx, region); err != nil {
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

// madeHere records an image this backend has just made (CopyImage,
// RegisterImage): a new AMI has no launch permissions, so until they are
// changed there is no need to read them.
func (b *Backend) madeHere(region, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.made[region+"/"+id] = true
}

// unchanged reports whether the image was made by this backend and its
// launch permissions have not been changed since.
func (b *Backend) unchanged(region, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.made[region+"/"+id]
}

// changed records that the image's launch permissions were (or may have
// been) changed: from now on they are read.
func (b *Backend) changed(region, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.made, region+"/"+id)
}
