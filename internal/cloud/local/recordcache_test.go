package local

import (
	"context"
	"fmt"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// TestListSeesEveryUpdate rewrites records as fast as it can, with values
// of equal length so the files keep their size, and lists after each
// write: the cached listing must always show the latest version, even when
// the filesystem reuses inode numbers within one timestamp tick.
func TestListSeesEveryUpdate(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, config.LocalBackend{}, "r")
	var ids []string
	for i := range 3 {
		ids = append(ids, seed(t, b, "r", fmt.Sprint("img", i), map[string]string{"n": "000"}, 512).ID)
	}
	for i := range 150 {
		id := ids[i%len(ids)]
		val := fmt.Sprintf("%03d", i+1)
		if err := b.TagImage(ctx, "r", id, map[string]string{"n": val}); err != nil {
			t.Fatal(err)
		}
		imgs, err := b.ListImages(ctx, "r", cloud.Filter{IDs: []string{id}})
		if err != nil || len(imgs) != 1 {
			t.Fatalf("ListImages: %v, %v", imgs, err)
		}
		if got := imgs[0].Tags["n"]; got != val {
			t.Fatalf("write %d: listed tag n=%s, want %s (stale cache)", i, got, val)
		}
		all, err := b.ListImages(ctx, "r", cloud.Filter{Tags: map[string]string{"n": val}})
		if err != nil || len(all) != 1 || all[0].ID != id {
			t.Fatalf("write %d: listing by the new tag found %v, %v", i, all, err)
		}
	}
}
