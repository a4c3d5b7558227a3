package local

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// ListImages returns the images in region that match f, oldest first, in
// any state. It reads the region's records without taking the lock.
func (b *Backend) ListImages(ctx context.Context, region string, f cloud.Filter) ([]cloud.Image, error) {
	imgs, err := b.listImages(ctx, region, f)
	if err != nil {
		return nil, fmt.Errorf("local: list images in region %s: %w", show(region), err)
	}
	return imgs, nil
}

func (b *Backend) listImages(ctx context.Context, region string, f cloud.Filter) ([]cloud.Image, error) {
	r, err := b.region(region)
	if err != nil {
		return nil, err
	}
	var ids []string
	if f.IDs != nil {
		ids = make([]string, 0, len(f.IDs))
		for _, id := range f.IDs {
			if err := checkImageID("filter id", id); err != nil {
				return nil, err
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	recs, err := r.scanRecords(ctx, ids)
	if err != nil {
		return nil, err
	}
	imgs := make([]cloud.Image, 0, len(recs))
	for _, rec := range recs {
		if cloud.Match(rec.Tags, f.Tags) {
			imgs = append(imgs, rec.image(r.name))
		}
	}
	slices.SortFunc(imgs, func(a, b cloud.Image) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return imgs, nil
}

// Image returns one image; an absent one is an error matching
// cloud.ErrNotFound.
func (b *Backend) Image(ctx context.Context, region, id string) (cloud.Image, error) {
	r, rec, err := b.lookup(region, id)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("local: %w", err)
	}
	return rec.image(r.name), nil
}

// DiskFile returns the path of the blob holding the image's disk in format
// ("raw" or an export format), for reading: the boot tester opens it with
// qemu's snapshot=on. The file is read-only and shared with other images.
func (b *Backend) DiskFile(ctx context.Context, region, id, format string) (string, error) {
	path, _, err := b.DiskBlob(ctx, region, id, format)
	return path, err
}

// DiskBlob is DiskFile with the sha256 the image's record gives for the
// blob, which a reader checks what it read against.
func (b *Backend) DiskBlob(ctx context.Context, region, id, format string) (path, sha256 string, err error) {
	r, rec, err := b.lookup(region, id)
	if err != nil {
		return "", "", fmt.Errorf("local: %w", err)
	}
	if rec.State != cloud.StateAvailable {
		return "", "", cloud.Mark(fmt.Errorf("local: image %s in region %s is %s", id, region, rec.State), cloud.ErrNotYet)
	}
	digest, ok := rec.Formats[format]
	if !ok {
		return "", "", invalidf("local: image %s in region %s has no %q format (it has %v)", id, region, format, slices.Sorted(maps.Keys(rec.Formats)))
	}
	return r.blobPath(digest), digest, nil
}

// LaunchPermissions returns who may launch the image.
func (b *Backend) LaunchPermissions(ctx context.Context, region, id string) (cloud.LaunchPermissions, error) {
	_, rec, err := b.lookup(region, id)
	if err != nil {
		return cloud.LaunchPermissions{}, fmt.Errorf("local: %w", err)
	}
	return normalize(rec.Launch), nil
}

// SetLaunchPermissions makes the image's launch permissions exactly p.
// Making an image public in a region listed in BlockPublicAccess fails with
// an error matching cloud.ErrPublicAccessBlocked.
func (b *Backend) SetLaunchPermissions(ctx context.Context, region, id string, p cloud.LaunchPermissions) error {
	err := b.update(ctx, region, id, func(rec *imageRecord) error {
		if err := checkLaunchPermissions(p); err != nil {
			return err
		}
		if p.Public && b.blocked[region] {
			return cloud.Mark(fmt.Errorf("image %s: region %s blocks public images (block_public_access)", id, region), cloud.ErrPublicAccessBlocked)
		}
		rec.Launch = normalize(p)
		return nil
	})
	if err != nil {
		return fmt.Errorf("local: set launch permissions: %w", err)
	}
	return nil
}

// SetDeprecation sets the image's deprecation time; the zero time removes
// it.
func (b *Backend) SetDeprecation(ctx context.Context, region, id string, t time.Time) error {
	err := b.update(ctx, region, id, func(rec *imageRecord) error {
		rec.Deprecation = time.Time{}
		if !t.IsZero() {
			rec.Deprecation = t.UTC().Round(0)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("local: set deprecation: %w", err)
	}
	return nil
}

// TagImage adds or replaces tags on the image.
func (b *Backend) TagImage(ctx context.Context, region, id string, tags map[string]string) error {
	err := b.update(ctx, region, id, func(rec *imageRecord) error {
		if err := checkTags(tags); err != nil {
			return err
		}
		merged := maps.Clone(rec.Tags)
		if merged == nil {
			merged = make(map[string]string, len(tags))
		}
		maps.Copy(merged, tags)
		if len(merged) > MaxTags {
			return invalidf("tags: the image would have %d tags, at most %d are allowed", len(merged), MaxTags)
		}
		rec.Tags = merged
		return nil
	})
	if err != nil {
		return fmt.Errorf("local: tag image: %w", err)
	}
	return nil
}

// lookup validates region and id and reads the record.
func (b *Backend) lookup(region, id string) (*region, *imageRecord, error) {
	r, err := b.region(region)
	if err != nil {
		return nil, nil, err
	}
	if err := checkImageID("image id", id); err != nil {
		return nil, nil, err
	}
	rec, err := r.readRecord(id)
	if err != nil {
		return nil, nil, err
	}
	return r, rec, nil
}

// update changes one record under the region lock; change returning an
// error leaves the record as it was.
func (b *Backend) update(ctx context.Context, region, id string, change func(*imageRecord) error) error {
	r, err := b.region(region)
	if err != nil {
		return err
	}
	if err := checkImageID("image id", id); err != nil {
		return err
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := r.readRecord(id)
	if err != nil {
		return err
	}
	if err := change(rec); err != nil {
		return err
	}
	return r.writeRecord(rec)
}
