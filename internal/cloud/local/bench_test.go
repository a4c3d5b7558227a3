package local

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// fillRegion writes n image records into region directly (no fsync, no
// blobs: listing reads only records), tagged like kiln's images, every
// tenth one with use case "special".
func fillRegion(tb testing.TB, b *Backend, region string, n int) {
	tb.Helper()
	r, err := b.region(region)
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.ensure(); err != nil {
		tb.Fatal(err)
	}
	digest := fmt.Sprintf("%064x", 1)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		useCase := "ephemeral"
		if i%10 == 0 {
			useCase = "special"
		}
		rec := imageRecord{
			Version: recordVersion, ID: tokenImageID(region, fmt.Sprint(i)), Name: fmt.Sprintf("%s-x86_64-%d", useCase, i),
			Architecture: "x86_64", State: cloud.StateAvailable, Created: created.Add(time.Duration(i) * time.Minute),
			Tags: map[string]string{
				cloud.TagManaged: "true", cloud.TagAssetID: fmt.Sprintf("kiln-20260101-%06x", i),
				cloud.TagUseCase: useCase, cloud.TagPhase: cloud.PhaseReplicate, cloud.TagArch: "x86_64",
				cloud.TagToken: fmt.Sprintf("%032x", i), "cost-center": "images",
			},
			Launch:  cloud.LaunchPermissions{Public: i%3 == 0, Accounts: []string{"111122223333"}},
			Size:    2 << 30,
			SHA256:  digest,
			Formats: map[string]string{formatRaw: digest, "qcow2": digest},
			Token:   fmt.Sprintf("%032x", i),
		}
		data, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(r.recordPath(rec.ID), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func regionNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("region-%02d", i)
	}
	return names
}

// BenchmarkListImages lists 2,000 images in one region, and in each of 16
// regions at once as a fan-out over regions does, with a fresh backend
// (cold: nothing decoded yet) and with one that listed before.
func BenchmarkListImages(b *testing.B) {
	const perRegion = 2000
	regions := regionNames(16)
	root := b.TempDir()
	be, err := New(config.LocalBackend{}, root, regions)
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range regions {
		fillRegion(b, be, r, perRegion)
	}
	ctx := context.Background()
	filter := cloud.Filter{Tags: map[string]string{cloud.TagUseCase: "special", cloud.TagManaged: ""}}

	b.Run("1x2000", func(b *testing.B) {
		for b.Loop() {
			imgs, err := be.ListImages(ctx, regions[0], cloud.Filter{})
			if err != nil || len(imgs) != perRegion {
				b.Fatalf("%d images, %v", len(imgs), err)
			}
		}
	})
	b.Run("1x2000-tags", func(b *testing.B) {
		for b.Loop() {
			imgs, err := be.ListImages(ctx, regions[0], filter)
			if err != nil || len(imgs) != perRegion/10 {
				b.Fatalf("%d images, %v", len(imgs), err)
			}
		}
	})
	listAll := func(b *testing.B, be *Backend) {
		var wg sync.WaitGroup
		for _, r := range regions {
			wg.Go(func() {
				imgs, err := be.ListImages(ctx, r, cloud.Filter{})
				if err != nil || len(imgs) != perRegion {
					b.Errorf("%s: %d images, %v", r, len(imgs), err)
				}
			})
		}
		wg.Wait()
	}
	// The first listing in a process reads and decodes every record.
	b.Run("16x2000-cold", func(b *testing.B) {
		for b.Loop() {
			fresh, err := New(config.LocalBackend{}, root, regions)
			if err != nil {
				b.Fatal(err)
			}
			listAll(b, fresh)
		}
	})
	// Later ones stat each record and reuse what they decoded.
	listAll(b, be)
	b.Run("16x2000", func(b *testing.B) {
		for b.Loop() {
			listAll(b, be)
		}
	})
}

// TestListImagesScale lists 2,000 images: the result must be complete,
// ordered and filtered, and take well under a second (generous: the
// benchmark shows the real cost).
func TestListImagesScale(t *testing.T) {
	b := newBackend(t, config.LocalBackend{}, "big")
	fillRegion(t, b, "big", 2000)
	ctx := context.Background()
	start := time.Now()
	imgs, err := b.ListImages(ctx, "big", cloud.Filter{})
	elapsed := time.Since(start)
	if err != nil || len(imgs) != 2000 {
		t.Fatalf("ListImages: %d images, %v", len(imgs), err)
	}
	for i := 1; i < len(imgs); i++ {
		if !imgs[i-1].Created.Before(imgs[i].Created) {
			t.Fatalf("images not ordered by creation at %d", i)
		}
	}
	special, err := b.ListImages(ctx, "big", cloud.Filter{Tags: map[string]string{cloud.TagUseCase: "special"}})
	if err != nil || len(special) != 200 {
		t.Errorf("filtered: %d images, %v; want 200", len(special), err)
	}
	if elapsed > time.Second {
		t.Errorf("listing 2,000 images took %v", elapsed)
	}
	t.Logf("listed 2,000 images in %v", elapsed)
}
