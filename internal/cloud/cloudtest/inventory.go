package cloudtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// TestInventory checks a backend's cloud.Inventory: images are found by
// tag with their children, and DeleteAsset in cloud.DeleteOrder removes
// everything.
func TestInventory(t *testing.T, h Harness) {
	t.Run("ListAssetsFindsImages", func(t *testing.T) { testListAssets(t, h) })
	t.Run("ListAssetsByIDs", func(t *testing.T) { testListAssetsByIDs(t, h) })
	t.Run("DeleteAssets", func(t *testing.T) { testDeleteAssets(t, h) })
	t.Run("DeleteAbsentAsset", func(t *testing.T) { testDeleteAbsentAsset(t, h) })
	t.Run("UnknownRegion", func(t *testing.T) { testInventoryUnknownRegion(t, h) })
}

// listAssets lists assets with f, failing the test on error, and checks
// what every backend must report: the region, a kind, and children whose
// parents are listed too.
func listAssets(t *testing.T, b Backend, region string, f cloud.Filter) []cloud.Asset {
	t.Helper()
	assets, err := b.ListAssets(t.Context(), region, f)
	if err != nil {
		t.Fatalf("ListAssets(%s, %+v): %v", region, f, err)
	}
	byID := make(map[string]bool)
	for _, a := range assets {
		byID[a.ID] = true
	}
	for _, a := range assets {
		if a.Region != region || a.Kind == "" || a.ID == "" {
			t.Errorf("asset %+v: want region %s, a kind and an id", a, region)
		}
		if a.Parent == "" && !cloud.Match(a.Tags, f.Tags) {
			t.Errorf("asset %+v does not carry the tags it was listed by, %v", a, f.Tags)
		}
		if a.Parent != "" && !byID[a.Parent] {
			t.Errorf("asset %s %s has parent %s, which is not listed", a.Kind, a.ID, a.Parent)
		}
	}
	return assets
}

// imageAssets returns the ids of the image assets, sorted.
func imageAssets(assets []cloud.Asset) []string {
	var out []string
	for _, a := range assets {
		if a.Kind == cloud.KindImage {
			out = append(out, a.ID)
		}
	}
	slices.Sort(out)
	return out
}

func testListAssets(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	a := h.Seed(t, b, r0, "asset-a", with(tags, cloud.TagAssetID, "run-1"))
	c := h.Seed(t, b, r0, "asset-b", with(tags, cloud.TagAssetID, "run-2"))
	h.Seed(t, b, r0, "asset-other", map[string]string{"kiln:suite": "someone-else"})

	if got := imageAssets(listAssets(t, b, r0, cloud.Filter{Tags: tags})); !slices.Equal(got, sorted(a.ID, c.ID)) {
		t.Errorf("image assets tagged %v: %v, want %v", tags, got, sorted(a.ID, c.ID))
	}
	run1 := with(tags, cloud.TagAssetID, "run-1")
	assets := listAssets(t, b, r0, cloud.Filter{Tags: run1})
	if got := imageAssets(assets); !slices.Equal(got, []string{a.ID}) {
		t.Errorf("image assets of run-1: %v, want [%s]", got, a.ID)
	}
	for _, as := range assets {
		if as.Kind == cloud.KindImage && (as.State != string(cloud.StateAvailable) || !hasTags(as.Tags, run1)) {
			t.Errorf("image asset %+v: want state available and tags %v", as, run1)
		}
	}
	if got := listAssets(t, b, r0, cloud.Filter{Tags: with(tags, cloud.TagAssetID, "run-3")}); len(got) != 0 {
		t.Errorf("assets of a run that made nothing: %+v", got)
	}
}

func testListAssetsByIDs(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	a := h.Seed(t, b, r0, "asset-id-a", tags)
	c := h.Seed(t, b, r0, "asset-id-b", tags)
	got := imageAssets(listAssets(t, b, r0, cloud.Filter{Tags: tags, IDs: []string{a.ID}}))
	if !slices.Equal(got, []string{a.ID}) {
		t.Errorf("image assets with IDs [%s]: %v (other image %s)", a.ID, got, c.ID)
	}
}

func testDeleteAssets(t *testing.T, h Harness) {
	b, r0, r1, tags := h.setup(t)
	src := h.Seed(t, b, r0, "cleanup-src", tags)
	cp, err := b.CopyImage(t.Context(), cloud.CopyInput{
		SourceRegion: r0, SourceID: src.ID, Region: r1, Name: "cleanup-copy",
		Tags: tags, Token: cloud.Token("cloudtest-cleanup", tags["kiln:suite"]),
	})
	if err != nil {
		t.Fatalf("CopyImage: %v", err)
	}
	h.wait(t, b, r1, cp.ID)

	for _, region := range []string{r1, r0} {
		assets := listAssets(t, b, region, cloud.Filter{Tags: tags})
		if len(imageAssets(assets)) != 1 {
			t.Fatalf("image assets in %s: %v, want one", region, imageAssets(assets))
		}
		deleteAll(t, b, assets)
		if left := listAssets(t, b, region, cloud.Filter{Tags: tags}); len(left) != 0 {
			t.Errorf("assets left in %s after deleting all: %+v", region, left)
		}
		// Deleting again succeeds.
		for _, a := range assets {
			if err := b.DeleteAsset(t.Context(), a); err != nil {
				t.Errorf("DeleteAsset(%s %s) again: %v, want success", a.Kind, a.ID, err)
			}
		}
	}
	absent(t, b, r0, src.ID)
	absent(t, b, r1, cp.ID)
}

// deleteAll deletes assets in cloud.DeleteOrder, as cleanup does, retrying
// while a dependency holds one.
func deleteAll(t *testing.T, b Backend, assets []cloud.Asset) {
	t.Helper()
	order := slices.Clone(assets)
	slices.SortStableFunc(order, func(x, y cloud.Asset) int {
		return slices.Index(cloud.DeleteOrder, x.Kind) - slices.Index(cloud.DeleteOrder, y.Kind)
	})
	for _, a := range order {
		err := cloud.Retry(t.Context(), 10, 200*time.Millisecond, 5*time.Second, func(ctx context.Context) error {
			return b.DeleteAsset(ctx, a)
		})
		if err != nil {
			t.Fatalf("DeleteAsset(%s %s in %s): %v", a.Kind, a.ID, a.Region, err)
		}
	}
}

func testDeleteAbsentAsset(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	img := h.Seed(t, b, r0, "absent-asset", tags)
	a := cloud.Asset{Kind: cloud.KindImage, ID: img.ID, Region: r0}
	if err := b.DeleteAsset(t.Context(), a); err != nil {
		t.Fatalf("DeleteAsset(%+v): %v", a, err)
	}
	if err := b.DeleteAsset(t.Context(), a); err != nil {
		t.Errorf("DeleteAsset of an absent image: %v, want success", err)
	}
	absent(t, b, r0, img.ID)
}

func testInventoryUnknownRegion(t *testing.T, h Harness) {
	b, r0, _, tags := h.setup(t)
	img := h.Seed(t, b, r0, "inventory-region", tags)
	if _, err := b.ListAssets(t.Context(), unknownRegion, cloud.Filter{}); !errors.Is(err, cloud.ErrInvalid) {
		t.Errorf("ListAssets in region %q: %v, want an error matching cloud.ErrInvalid", unknownRegion, err)
	}
	err := b.DeleteAsset(t.Context(), cloud.Asset{Kind: cloud.KindImage, ID: img.ID, Region: unknownRegion})
	if !errors.Is(err, cloud.ErrInvalid) {
		t.Errorf("DeleteAsset in region %q: %v, want an error matching cloud.ErrInvalid", unknownRegion, err)
	}
	if _, err := b.Image(t.Context(), r0, img.ID); err != nil {
		t.Errorf("image after DeleteAsset in an unknown region: %v", err)
	}
}
