package cloudtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Backend is the part of cloud.Backend the suites exercise; every
// cloud.Backend is one.
type Backend interface {
	Name() string
	Account(ctx context.Context) (string, error)
	cloud.Images
	cloud.Inventory
}

// Harness gives the suites backends and images to work on.
type Harness struct {
	// New returns a fresh backend and at least two of its regions, with
	// nothing in them that a previous test made (or only images the suite
	// cannot see through its per-test tags). Cleanup is registered on t.
	New func(t *testing.T) (Backend, []string)
	// Seed makes an available image called name in region, tagged with
	// tags at creation, without the Builder (local: ImportImage of a small
	// disk file; aws: RegisterImage or CreateImage).
	Seed func(t *testing.T, b Backend, region, name string, tags map[string]string) cloud.Image
	// WaitTimeout bounds each wait for a copy; default 10 minutes.
	WaitTimeout time.Duration
}

// setup returns a fresh backend, its first two regions and tags unique to
// this test, so that assertions see only what the test made.
func (h Harness) setup(t *testing.T) (Backend, string, string, map[string]string) {
	t.Helper()
	if h.New == nil || h.Seed == nil {
		t.Fatal("cloudtest: Harness needs New and Seed")
	}
	b, regions := h.New(t)
	if len(regions) < 2 {
		t.Fatalf("cloudtest: Harness.New returned regions %v, the suite needs two", regions)
	}
	return b, regions[0], regions[1], map[string]string{
		cloud.TagManaged: "true",
		"kiln:suite":     uniqueValue(),
	}
}

// uniqueValue returns a value no other test uses.
func uniqueValue() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// with returns a copy of tags with the given pairs added.
func with(tags map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(tags)+len(kv)/2)
	for k, v := range tags {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// ids returns the ids of imgs, sorted.
func ids(imgs []cloud.Image) []string {
	out := make([]string, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, img.ID)
	}
	slices.Sort(out)
	return out
}

// sorted returns ids sorted.
func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// hasTags reports whether got holds every pair of want.
func hasTags(got, want map[string]string) bool {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// list lists images with f, failing the test on error.
func list(t *testing.T, b Backend, region string, f cloud.Filter) []cloud.Image {
	t.Helper()
	imgs, err := b.ListImages(t.Context(), region, f)
	if err != nil {
		t.Fatalf("ListImages(%s, %+v): %v", region, f, err)
	}
	return imgs
}

// wait waits for an image to become available.
func (h Harness) wait(t *testing.T, b Backend, region, id string) cloud.Image {
	t.Helper()
	d := h.WaitTimeout
	if d <= 0 {
		d = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	img, err := b.WaitImage(ctx, region, id)
	if err != nil {
		t.Fatalf("WaitImage(%s, %s): %v", region, id, err)
	}
	if img.State != cloud.StateAvailable {
		t.Fatalf("WaitImage(%s, %s) returned state %q", region, id, img.State)
	}
	return img
}

// absent checks that region has no image id.
func absent(t *testing.T, b Backend, region, id string) {
	t.Helper()
	_, err := b.Image(t.Context(), region, id)
	if !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("Image(%s, %s) after delete: error %v, want one matching cloud.ErrNotFound", region, id, err)
	}
	if got := list(t, b, region, cloud.Filter{IDs: []string{id}}); len(got) != 0 {
		t.Errorf("ListImages(%s, IDs %s) after delete: %v, want none", region, id, ids(got))
	}
}

// unknownRegion is a region no harness configures.
const unknownRegion = "kiln-no-such-region-9"
