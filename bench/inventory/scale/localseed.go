package scale

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
)

// SeedLocal fills every region of the project's local store with n images
// described by spec, through the store's own API: one import of a small
// disk per region, then copies within the region (which share its blob),
// each a real image record. Regions are filled a few at a time. It returns
// the image ids per region, in spec order.
func SeedLocal(ctx context.Context, cfg *config.Config, n int, spec func(region string, i int) ImageSpec) (map[string][]string, error) {
	return seedRegions(ctx, cfg.Regions, func(ctx context.Context, region string) ([]string, error) {
		var now time.Time
		b, err := local.New(cfg.Backend.Local, cfg.Backend.Local.Root, cfg.Regions, local.WithClock(func() time.Time { return now }))
		if err != nil {
			return nil, err
		}
		disk := filepath.Join(cfg.StateDir(), "seed-"+region+".raw")
		if err := os.MkdirAll(filepath.Dir(disk), 0o755); err != nil {
			return nil, err
		}
		data := make([]byte, 4096)
		rand.Read(data)
		if err := os.WriteFile(disk, data, 0o644); err != nil {
			return nil, err
		}
		out := make([]string, 0, n)
		var first string
		for i := range n {
			s := spec(region, i)
			now = s.Created
			var img cloud.Image
			if i == 0 {
				img, err = b.ImportImage(ctx, local.ImportInput{Region: region, Name: s.Name, Arch: "x86_64", Tags: s.Tags, Disk: disk})
				first = img.ID
			} else {
				img, err = b.CopyImage(ctx, cloud.CopyInput{SourceRegion: region, SourceID: first, Region: region, Name: s.Name, Tags: s.Tags})
			}
			if err != nil {
				return nil, fmt.Errorf("seed %s image %d: %w", region, i, err)
			}
			if s.Public {
				if err := b.SetLaunchPermissions(ctx, region, img.ID, cloud.LaunchPermissions{Public: true}); err != nil {
					return nil, fmt.Errorf("seed %s: make %s public: %w", region, img.ID, err)
				}
			}
			out = append(out, img.ID)
		}
		return out, nil
	})
}
