package aws

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

func TestListImagesFilters(t *testing.T) {
	r := newRig(t)
	c := r.ec2("us-west-2")
	a := seedImage(t, c, "img-a", map[string]string{cloud.TagManaged: "true", cloud.TagUseCase: "one"})
	b := seedImage(t, c, "img-b", map[string]string{cloud.TagManaged: "true", cloud.TagUseCase: "two"})
	seedImage(t, c, "img-c", map[string]string{"other": "x"})
	ids := func(imgs []cloud.Image) []string {
		var out []string
		for _, i := range imgs {
			out = append(out, i.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	tests := []struct {
		name string
		f    cloud.Filter
		want []string
	}{
		{"by tag value", cloud.Filter{Tags: map[string]string{cloud.TagUseCase: "one"}}, []string{*a.ImageId}},
		{"by tag key", cloud.Filter{Tags: map[string]string{cloud.TagManaged: ""}}, sorted(*a.ImageId, *b.ImageId)},
		{"by ids, one gone", cloud.Filter{IDs: []string{*b.ImageId, "ami-00000000000000000"}}, []string{*b.ImageId}},
		{"tags and ids", cloud.Filter{Tags: map[string]string{cloud.TagUseCase: "two"}, IDs: []string{*a.ImageId}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.b.ListImages(t.Context(), "us-west-2", tt.f)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("got %v, want %v", ids(got), tt.want)
			}
		})
	}
	img, err := r.b.Image(t.Context(), "us-west-2", *a.ImageId)
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != "img-a" || img.Architecture != "x86_64" || img.State != cloud.StateAvailable || img.Public ||
		img.Created.IsZero() || len(img.Snapshots) != 1 || img.Tags[cloud.TagUseCase] != "one" || img.Region != "us-west-2" {
		t.Errorf("Image() = %+v", img)
	}
	if _, err := r.b.Image(t.Context(), "us-west-2", "ami-00000000000000000"); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("Image of an absent id: %v, want ErrNotFound", err)
	}
}

func TestWaitAvailable(t *testing.T) {
	r := newRig(t)
	src := seedImage(t, r.ec2("us-east-1"), "img", nil)
	img, err := r.b.WaitImage(t.Context(), "us-east-1", *src.ImageId)
	if err != nil || img.State != cloud.StateAvailable {
		t.Fatalf("WaitImage = %+v, %v", img, err)
	}
	// Three consecutive reads confirm it.
	if n := r.stub.Calls("ec2", "DescribeImages"); n < 3 {
		t.Errorf("%d DescribeImages calls, want at least 3 consecutive available reads", n)
	}
	_, err = r.b.WaitAvailable(t.Context(), "us-east-1", "ami-00000000000000000")
	if !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("WaitAvailable for an absent image: %v, want ErrNotFound", err)
	}

	broken := seedImage(t, r.ec2("us-east-1"), "broken", nil)
	r.stub.SetImageState(*broken.ImageId, "failed", "Client.InvalidSnapshot.NotFound", "snapshot snap-1 was deleted")
	_, err = r.b.WaitAvailable(t.Context(), "us-east-1", *broken.ImageId)
	if err == nil || !strings.Contains(err.Error(), "failed: Client.InvalidSnapshot.NotFound: snapshot snap-1 was deleted") {
		t.Errorf("WaitAvailable for a failed image: %v, want the state reason", err)
	}

	// Seen pending, then available: that read is enough.
	late := seedImage(t, r.ec2("us-east-1"), "late", nil)
	r.stub.SetImageState(*late.ImageId, "pending", "", "")
	before := r.stub.Calls("ec2", "DescribeImages")
	go func() {
		for r.stub.Calls("ec2", "DescribeImages") < before+2 {
			time.Sleep(time.Millisecond)
		}
		r.stub.SetImageState(*late.ImageId, "available", "", "")
	}()
	if img, err := r.b.WaitAvailable(t.Context(), "us-east-1", *late.ImageId); err != nil || img.State != cloud.StateAvailable {
		t.Fatalf("WaitAvailable of a pending image = %+v, %v", img, err)
	}
	// One or two pending reads (the switch races the second), then one
	// available read: three confirming reads would make it four or more.
	if n := r.stub.Calls("ec2", "DescribeImages") - before; n < 2 || n > 3 {
		t.Errorf("%d reads of an image seen pending, then available; want 2 or 3 (no confirming reads after the change)", n)
	}

	slow := seedImage(t, r.ec2("us-east-1"), "slow", nil)
	r.stub.SetImageState(*slow.ImageId, "pending", "", "")
	r.b.cfg.CopyTimeout = config.Duration(200 * time.Millisecond)
	_, err = r.b.WaitAvailable(t.Context(), "us-east-1", *slow.ImageId)
	var te *cloud.TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "waiting for image "+*slow.ImageId+" in us-east-1 to become available") ||
		!strings.Contains(err.Error(), "last state pending") {
		t.Errorf("WaitAvailable for an image stuck pending: %v, want a timeout saying what it waited for", err)
	}
}

func TestTagImage(t *testing.T) {
	r := newRig(t)
	src := seedImage(t, r.ec2("us-east-1"), "img", map[string]string{"a": "1"})
	if err := r.b.TagImage(t.Context(), "us-east-1", *src.ImageId, map[string]string{cloud.TagTest: cloud.TestPassed, "a": "2"}); err != nil {
		t.Fatal(err)
	}
	got := tagMap(describeOne(t, r.ec2("us-east-1"), *src.ImageId).Tags)
	if got[cloud.TagTest] != cloud.TestPassed || got["a"] != "2" {
		t.Errorf("tags %v", got)
	}
	err := r.b.TagImage(t.Context(), "us-east-1", *src.ImageId, map[string]string{"aws:reserved": "x"})
	if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), "aws:reserved") {
		t.Errorf("reserved tag key: %v", err)
	}
	if err := r.b.TagImage(t.Context(), "us-east-1", "ami-00000000000000000", map[string]string{"a": "1"}); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("tag an absent image: %v, want ErrNotFound", err)
	}
}

func TestDeleteImage(t *testing.T) {
	r := newRig(t)
	c := r.ec2("us-east-1")
	src := seedImage(t, c, "img", nil)
	snaps := snapshotIDs(src)
	if len(snaps) == 0 {
		t.Fatal("seed image has no snapshot")
	}
	if err := r.b.DeleteImage(t.Context(), "us-east-1", *src.ImageId); err != nil {
		t.Fatal(err)
	}
	if imgs := ownImages(t, c); len(imgs) != 0 {
		t.Errorf("images left: %d", len(imgs))
	}
	out, err := c.DescribeSnapshots(t.Context(), &ec2.DescribeSnapshotsInput{Filters: []ec2types.Filter{filter("snapshot-id", snaps...)}})
	if err != nil || len(out.Snapshots) != 0 {
		t.Errorf("snapshots left after DeleteImage: %v %v", out.Snapshots, err)
	}
	if err := r.b.DeleteImage(t.Context(), "us-east-1", *src.ImageId); err != nil {
		t.Errorf("deleting an absent image: %v, want success", err)
	}
}

func TestLaunchPermissionsExact(t *testing.T) {
	r := newRig(t)
	src := seedImage(t, r.ec2("us-east-1"), "img", nil)
	id := *src.ImageId
	org := "arn:aws:organizations::123456789012:organization/o-abc123"
	ou := "arn:aws:organizations::123456789012:ou/o-abc123/ou-ab12-cd34"
	steps := []cloud.LaunchPermissions{
		{Accounts: []string{"111111111111", "222222222222"}, Organizations: []string{org}, OrganizationalUnits: []string{ou}},
		{Public: true, Accounts: []string{"222222222222"}},
		{},
	}
	for _, want := range steps {
		if err := r.b.SetLaunchPermissions(t.Context(), "us-east-1", id, want); err != nil {
			t.Fatalf("SetLaunchPermissions(%+v): %v", want, err)
		}
		got, err := r.b.LaunchPermissions(t.Context(), "us-east-1", id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Public != want.Public || !slices.Equal(got.Accounts, want.Accounts) ||
			!slices.Equal(got.Organizations, want.Organizations) || !slices.Equal(got.OrganizationalUnits, want.OrganizationalUnits) {
			t.Errorf("after setting %+v: %+v", want, got)
		}
		// And by a direct look at the attribute.
		attr, err := r.ec2("us-east-1").DescribeImageAttribute(t.Context(), &ec2.DescribeImageAttributeInput{
			ImageId: aws.String(id), Attribute: ec2types.ImageAttributeNameLaunchPermission})
		if err != nil {
			t.Fatal(err)
		}
		n := len(want.Accounts) + len(want.Organizations) + len(want.OrganizationalUnits)
		if want.Public {
			n++
		}
		if len(attr.LaunchPermissions) != n {
			t.Errorf("after setting %+v: %d launch permissions in EC2, want %d", want, len(attr.LaunchPermissions), n)
		}
		img, _ := r.b.Image(t.Context(), "us-east-1", id)
		if img.Public != want.Public {
			t.Errorf("Image().Public = %v, want %v", img.Public, want.Public)
		}
	}
	if _, err := r.b.LaunchPermissions(t.Context(), "us-east-1", "ami-00000000000000000"); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("LaunchPermissions of an absent image: %v", err)
	}
}

func TestPublicBlockedNamesRegion(t *testing.T) {
	r := newRig(t)
	r.stub.SetBlockPublicAccess("eu-west-1", true)
	for region, want := range map[string]bool{"eu-west-1": true, "us-east-1": false} {
		got, err := r.b.PublicAccessBlocked(t.Context(), region)
		if err != nil || got != want {
			t.Errorf("PublicAccessBlocked(%s) = %v, %v; want %v", region, got, err, want)
		}
	}
	img := seedImage(t, r.ec2("eu-west-1"), "img", nil)
	err := r.b.SetLaunchPermissions(t.Context(), "eu-west-1", *img.ImageId, cloud.LaunchPermissions{Public: true})
	if !errors.Is(err, cloud.ErrPublicAccessBlocked) || !strings.Contains(err.Error(), "eu-west-1") {
		t.Errorf("make public where blocked: %v, want ErrPublicAccessBlocked naming eu-west-1", err)
	}
	if p, _ := r.b.LaunchPermissions(t.Context(), "eu-west-1", *img.ImageId); p.Public {
		t.Error("image became public despite the block")
	}
	// Sharing with accounts is not public and is allowed.
	if err := r.b.SetLaunchPermissions(t.Context(), "eu-west-1", *img.ImageId, cloud.LaunchPermissions{Accounts: []string{"111111111111"}}); err != nil {
		t.Errorf("share with an account where public access is blocked: %v", err)
	}
	other := seedImage(t, r.ec2("us-east-1"), "img", nil)
	if err := r.b.SetLaunchPermissions(t.Context(), "us-east-1", *other.ImageId, cloud.LaunchPermissions{Public: true}); err != nil {
		t.Errorf("make public where not blocked: %v", err)
	}
}

func TestDeprecation(t *testing.T) {
	r := newRig(t)
	img := seedImage(t, r.ec2("us-east-1"), "img", nil)
	id := *img.ImageId
	at := time.Now().Add(90 * 24 * time.Hour).Truncate(time.Minute).UTC()
	if err := r.b.SetDeprecation(t.Context(), "us-east-1", id, at); err != nil {
		t.Fatal(err)
	}
	got, err := r.b.Image(t.Context(), "us-east-1", id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Deprecation.Equal(at) {
		t.Errorf("Deprecation = %v, want %v", got.Deprecation, at)
	}
	if list, _ := r.b.ListImages(t.Context(), "us-east-1", cloud.Filter{IDs: []string{id}}); len(list) != 1 || !list[0].Deprecation.Equal(at) {
		t.Errorf("ListImages deprecation: %+v", list)
	}
	if err := r.b.SetDeprecation(t.Context(), "us-east-1", id, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.stub.Deprecation(id); ok {
		t.Error("deprecation still set after removing it")
	}
	if got, _ := r.b.Image(t.Context(), "us-east-1", id); !got.Deprecation.IsZero() {
		t.Errorf("Deprecation after removal = %v", got.Deprecation)
	}

	// Public images: at most two years out.
	if err := r.b.SetLaunchPermissions(t.Context(), "us-east-1", id, cloud.LaunchPermissions{Public: true}); err != nil {
		t.Fatal(err)
	}
	far := time.Now().AddDate(3, 0, 0)
	err = r.b.SetDeprecation(t.Context(), "us-east-1", id, far)
	if !errors.Is(err, cloud.ErrInvalid) || !strings.Contains(err.Error(), "2 years") {
		t.Errorf("deprecate a public image 3 years out: %v, want ErrInvalid about 2 years", err)
	}
	if _, ok := r.stub.Deprecation(id); ok {
		t.Error("refused deprecation reached the endpoint")
	}
	if err := r.b.SetDeprecation(t.Context(), "us-east-1", id, time.Now().AddDate(1, 0, 0)); err != nil {
		t.Errorf("deprecate a public image a year out: %v", err)
	}
	if err := r.b.SetDeprecation(t.Context(), "us-east-1", "ami-00000000000000000", at); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("deprecate an absent image: %v", err)
	}
}
