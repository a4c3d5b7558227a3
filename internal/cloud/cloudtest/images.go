package cloudtest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// TestImages checks a backend's cloud.Images: listing, lookup, copies,
// launch permissions, deprecation, tags and deletion.
func TestImages(t *testing.T, h Harness) {
	t.Run("ListByTags", func(t *testing.T) { testListByTags(t, h) })
	t.Run("ListByIDs", func(t *testing.T) { testListByIDs(t, h) })
	t.Run("ImageNotFound", func(t *testing.T) { testImageNotFound(t, h) })
	t.Run("CopyToOtherRegion", func(t *testing.T) { testCopyToOtherRegion(t, h) })
	t.Run("CopySameRegion", func(t *testing.T) { testCopySameRegion(t, h) })
	t.Run("LaunchPermissions", func(t *testing.T) { testLaunchPermissions(t, h) })
	t.Run("Deprecation", func(t *testing.T) { testDeprecation(t, h) })
	t.Run("TagImage", func(t *testing.T) { testTagImage(t, h) })
	t.Run("DeleteImage", func(t *testing.T) { testDeleteImage(t, h) })
	t.Run("UnknownRegion", func(t *testing.T) { testUnknownRegion(t, h) })
}

func testListByTags(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	a := h.Seed(t, b, r0, "list-a", with(tags, "color", "red"))
	c := h.Seed(t, b, r0, "list-b", with(tags, "color", "blue"))
	d := h.Seed(t, b, r0, "list-c", with(tags, "shape", "round"))
	h.Seed(t, b, r0, "list-other", map[string]string{"kiln:suite": "someone-else"})

	for _, tc := range []struct {
		name string
		want map[string]string
		ids  []string
	}{
		{"suite only", tags, sorted(a.ID, c.ID, d.ID)},
		{"exact value", with(tags, "color", "red"), []string{a.ID}},
		{"empty value matches any", with(tags, "color", ""), sorted(a.ID, c.ID)},
		{"absent key", with(tags, "size", ""), nil},
		{"wrong value", with(tags, "color", "green"), nil},
	} {
		got := list(t, b, r0, cloud.Filter{Tags: tc.want})
		if !slices.Equal(ids(got), tc.ids) {
			t.Errorf("%s: ListImages(tags %v) = %v, want %v", tc.name, tc.want, ids(got), tc.ids)
		}
		for _, img := range got {
			if img.Region != r0 || img.State != cloud.StateAvailable || !hasTags(img.Tags, tags) {
				t.Errorf("%s: listed image %+v: want region %s, available, tags %v", tc.name, img, r0, tags)
			}
		}
	}
	got := list(t, b, r0, cloud.Filter{Tags: with(tags, "color", "red")})
	if len(got) == 1 && (got[0].Name != "list-a" || got[0].Tags["color"] != "red") {
		t.Errorf("listed image %+v: want name list-a with color=red", got[0])
	}
}

func testListByIDs(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	a := h.Seed(t, b, r0, "ids-a", tags)
	c := h.Seed(t, b, r0, "ids-b", tags)
	d := h.Seed(t, b, r0, "ids-c", with(tags, "pick", "no"))

	if got := list(t, b, r0, cloud.Filter{IDs: []string{a.ID, d.ID}}); !slices.Equal(ids(got), sorted(a.ID, d.ID)) {
		t.Errorf("ListImages(IDs %s %s) = %v", a.ID, d.ID, ids(got))
	}
	// IDs and tags must both match.
	f := cloud.Filter{IDs: []string{a.ID, c.ID, d.ID}, Tags: with(tags, "pick", "no")}
	if got := list(t, b, r0, f); !slices.Equal(ids(got), []string{d.ID}) {
		t.Errorf("ListImages(%+v) = %v, want [%s]", f, ids(got), d.ID)
	}
	img, err := b.Image(t.Context(), r0, c.ID)
	if err != nil {
		t.Fatalf("Image(%s, %s): %v", r0, c.ID, err)
	}
	if img.ID != c.ID || img.Name != "ids-b" || img.Region != r0 || !hasTags(img.Tags, tags) {
		t.Errorf("Image(%s, %s) = %+v, want the seeded image", r0, c.ID, img)
	}
}

func testImageNotFound(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	img := h.Seed(t, b, r0, "gone", tags)
	if err := b.DeleteImage(t.Context(), r0, img.ID); err != nil {
		t.Fatalf("DeleteImage: %v", err)
	}
	absent(t, b, r0, img.ID)
	if _, err := b.LaunchPermissions(t.Context(), r0, img.ID); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("LaunchPermissions of a deleted image: %v, want cloud.ErrNotFound", err)
	}
	if err := b.TagImage(t.Context(), r0, img.ID, map[string]string{"k": "v"}); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("TagImage of a deleted image: %v, want cloud.ErrNotFound", err)
	}
}

func testCopyToOtherRegion(t *testing.T, h Harness) {
	b, r0, r1, tags := h.setup(t)
	src := h.Seed(t, b, r0, "copy-src", tags)
	copyTags := with(tags, cloud.TagPhase, cloud.PhaseReplicate, cloud.TagSource, src.ID)
	in := cloud.CopyInput{
		SourceRegion: r0, SourceID: src.ID, Region: r1, Name: "copy-dst",
		Description: "conformance copy", Tags: copyTags, Token: cloud.Token("cloudtest", tags["kiln:suite"], r1),
	}
	first, err := b.CopyImage(t.Context(), in)
	if err != nil {
		t.Fatalf("CopyImage: %v", err)
	}
	if first.ID == "" || first.ID == src.ID {
		t.Fatalf("CopyImage returned id %q (source %s)", first.ID, src.ID)
	}
	// Tagged at creation: the tags are there before the copy is available.
	if first.Region != r1 || !hasTags(first.Tags, copyTags) {
		t.Errorf("CopyImage returned %+v, want region %s and tags %v", first, r1, copyTags)
	}
	img := h.wait(t, b, r1, first.ID)
	if img.Name != "copy-dst" || !hasTags(img.Tags, copyTags) || img.Architecture != src.Architecture {
		t.Errorf("copy = %+v, want name copy-dst, architecture %s, tags %v", img, src.Architecture, copyTags)
	}

	second, err := b.CopyImage(t.Context(), in)
	if err != nil {
		t.Fatalf("CopyImage again with the same token: %v", err)
	}
	if second.ID != first.ID {
		t.Errorf("CopyImage again with the same token made %s, the first call made %s", second.ID, first.ID)
	}
	if got := list(t, b, r1, cloud.Filter{Tags: copyTags}); !slices.Equal(ids(got), []string{first.ID}) {
		t.Errorf("images in %s after two copies with one token: %v, want [%s]", r1, ids(got), first.ID)
	}
	// The source is untouched.
	if got, err := b.Image(t.Context(), r0, src.ID); err != nil || got.State != cloud.StateAvailable {
		t.Errorf("source after copy: %+v, %v", got, err)
	}
}

func testCopySameRegion(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	src := h.Seed(t, b, r0, "same-src", tags)
	in := cloud.CopyInput{
		SourceRegion: r0, SourceID: src.ID, Region: r0, Name: "same-dst",
		Tags: with(tags, "copy", "yes"), Token: cloud.Token("cloudtest-same", tags["kiln:suite"]),
	}
	cp, err := b.CopyImage(t.Context(), in)
	if err != nil {
		t.Fatalf("CopyImage within %s: %v", r0, err)
	}
	if cp.ID == src.ID {
		t.Fatalf("copy within a region has the source's id %s", cp.ID)
	}
	h.wait(t, b, r0, cp.ID)
	if got := list(t, b, r0, cloud.Filter{Tags: tags}); !slices.Equal(ids(got), sorted(src.ID, cp.ID)) {
		t.Errorf("images in %s: %v, want source %s and copy %s", r0, ids(got), src.ID, cp.ID)
	}
	// Deleting the source leaves the copy whole.
	if err := b.DeleteImage(t.Context(), r0, src.ID); err != nil {
		t.Fatalf("DeleteImage(source): %v", err)
	}
	if img, err := b.Image(t.Context(), r0, cp.ID); err != nil || img.State != cloud.StateAvailable {
		t.Errorf("copy after deleting its source: %+v, %v", img, err)
	}
}

func testLaunchPermissions(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	img := h.Seed(t, b, r0, "perms", tags)
	const (
		org = "arn:aws:organizations::123456789012:organization/o-abcdefghij"
		ou  = "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab12-cdefgh34"
	)
	if got, err := b.LaunchPermissions(t.Context(), r0, img.ID); err != nil || !samePerms(got, cloud.LaunchPermissions{}) {
		t.Fatalf("LaunchPermissions of a new image = %+v, %v; want private", got, err)
	}
	for _, p := range []cloud.LaunchPermissions{
		{Public: true},
		{Accounts: []string{"111122223333", "444455556666"}},
		{Accounts: []string{"444455556666"}}, // exactly: one account dropped
		{Organizations: []string{org}},
		{OrganizationalUnits: []string{ou}},
		{Public: true, Accounts: []string{"111122223333"}, Organizations: []string{org}, OrganizationalUnits: []string{ou}},
		{}, // back to private
	} {
		if err := b.SetLaunchPermissions(t.Context(), r0, img.ID, p); err != nil {
			t.Fatalf("SetLaunchPermissions(%+v): %v", p, err)
		}
		got, err := b.LaunchPermissions(t.Context(), r0, img.ID)
		if err != nil {
			t.Fatalf("LaunchPermissions: %v", err)
		}
		if !samePerms(got, p) {
			t.Errorf("after SetLaunchPermissions(%+v): LaunchPermissions = %+v", p, got)
		}
		if im, err := b.Image(t.Context(), r0, img.ID); err != nil || im.Public != p.Public {
			t.Errorf("after SetLaunchPermissions(%+v): Image.Public = %v (%v), want %v", p, im.Public, err, p.Public)
		}
	}
}

// samePerms compares launch permissions as sets.
func samePerms(a, b cloud.LaunchPermissions) bool {
	set := func(s []string) []string {
		s = slices.Clone(s)
		slices.Sort(s)
		return slices.Compact(s)
	}
	return a.Public == b.Public &&
		slices.Equal(set(a.Accounts), set(b.Accounts)) &&
		slices.Equal(set(a.Organizations), set(b.Organizations)) &&
		slices.Equal(set(a.OrganizationalUnits), set(b.OrganizationalUnits))
}

func testDeprecation(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	img := h.Seed(t, b, r0, "deprecate", tags)
	if !img.Deprecation.IsZero() {
		t.Errorf("new image has deprecation %v", img.Deprecation)
	}
	// A whole minute in the future: clouds round to minutes and refuse the past.
	when := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(time.Minute)
	if err := b.SetDeprecation(t.Context(), r0, img.ID, when); err != nil {
		t.Fatalf("SetDeprecation(%v): %v", when, err)
	}
	got, err := b.Image(t.Context(), r0, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Deprecation.Equal(when) {
		t.Errorf("deprecation = %v, want %v", got.Deprecation, when)
	}
	if err := b.SetDeprecation(t.Context(), r0, img.ID, time.Time{}); err != nil {
		t.Fatalf("SetDeprecation(zero): %v", err)
	}
	if got, err := b.Image(t.Context(), r0, img.ID); err != nil || !got.Deprecation.IsZero() {
		t.Errorf("after clearing: deprecation = %v (%v), want none", got.Deprecation, err)
	}
}

func testTagImage(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	img := h.Seed(t, b, r0, "tagged", with(tags, "keep", "me"))
	if err := b.TagImage(t.Context(), r0, img.ID, map[string]string{cloud.TagTest: cloud.TestFailed, "extra": ""}); err != nil {
		t.Fatalf("TagImage: %v", err)
	}
	if err := b.TagImage(t.Context(), r0, img.ID, map[string]string{cloud.TagTest: cloud.TestPassed}); err != nil {
		t.Fatalf("TagImage (replace): %v", err)
	}
	got, err := b.Image(t.Context(), r0, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := with(tags, "keep", "me", cloud.TagTest, cloud.TestPassed, "extra", "")
	if !hasTags(got.Tags, want) {
		t.Errorf("tags = %v, want %v", got.Tags, want)
	}
	found := list(t, b, r0, cloud.Filter{Tags: map[string]string{"kiln:suite": tags["kiln:suite"], cloud.TagTest: cloud.TestPassed}})
	if !slices.Equal(ids(found), []string{img.ID}) {
		t.Errorf("ListImages by the new tag = %v, want [%s]", ids(found), img.ID)
	}
}

func testDeleteImage(t *testing.T, h Harness) {
	b, r0, r1, tags := h.setup(t)
	img := h.Seed(t, b, r0, "delete-me", tags)
	keep := h.Seed(t, b, r0, "keep-me", tags)
	cp, err := b.CopyImage(t.Context(), cloud.CopyInput{
		SourceRegion: r0, SourceID: img.ID, Region: r1, Name: "delete-me-copy",
		Tags: tags, Token: cloud.Token("cloudtest-delete", tags["kiln:suite"]),
	})
	if err != nil {
		t.Fatalf("CopyImage: %v", err)
	}
	h.wait(t, b, r1, cp.ID)
	if err := b.DeleteImage(t.Context(), r0, img.ID); err != nil {
		t.Fatalf("DeleteImage: %v", err)
	}
	absent(t, b, r0, img.ID)
	if got := list(t, b, r0, cloud.Filter{Tags: tags}); !slices.Equal(ids(got), []string{keep.ID}) {
		t.Errorf("images left in %s: %v, want [%s]", r0, ids(got), keep.ID)
	}
	if err := b.DeleteImage(t.Context(), r0, img.ID); err != nil {
		t.Errorf("DeleteImage of an absent image: %v, want success", err)
	}
	// The copy in the other region does not depend on the deleted source.
	if got, err := b.Image(t.Context(), r1, cp.ID); err != nil || got.State != cloud.StateAvailable {
		t.Errorf("copy after deleting its source: %+v, %v", got, err)
	}
	if err := b.DeleteImage(t.Context(), r1, cp.ID); err != nil {
		t.Fatalf("DeleteImage(copy): %v", err)
	}
	absent(t, b, r1, cp.ID)
}

func testUnknownRegion(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	img := h.Seed(t, b, r0, "region-check", tags)
	ctx := t.Context()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, cloud.ErrInvalid) {
			t.Errorf("%s in region %q: error %v, want one matching cloud.ErrInvalid", op, unknownRegion, err)
		}
	}
	_, err := b.ListImages(ctx, unknownRegion, cloud.Filter{})
	check("ListImages", err)
	_, err = b.Image(ctx, unknownRegion, img.ID)
	check("Image", err)
	_, err = b.CopyImage(ctx, cloud.CopyInput{SourceRegion: r0, SourceID: img.ID, Region: unknownRegion, Tags: tags, Token: "t"})
	check("CopyImage to", err)
	_, err = b.CopyImage(ctx, cloud.CopyInput{SourceRegion: unknownRegion, SourceID: img.ID, Region: r0, Tags: tags, Token: "t"})
	check("CopyImage from", err)
	check("SetLaunchPermissions", b.SetLaunchPermissions(ctx, unknownRegion, img.ID, cloud.LaunchPermissions{}))
	check("SetDeprecation", b.SetDeprecation(ctx, unknownRegion, img.ID, time.Time{}))
	check("TagImage", b.TagImage(ctx, unknownRegion, img.ID, map[string]string{"k": "v"}))
	check("DeleteImage", b.DeleteImage(ctx, unknownRegion, img.ID))
	// Nothing happened to the image.
	if got, err := b.Image(ctx, r0, img.ID); err != nil || got.State != cloud.StateAvailable {
		t.Errorf("image after calls in an unknown region: %+v, %v", got, err)
	}
}
