package local

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/kiln-images/kiln/internal/cloud"
)

// CopyImage copies an image to another region or within one, tagging the
// copy with in.Tags at creation. It is synchronous: it returns the copy
// available, or an error. With in.Token set it is idempotent: the copy's id
// is derived from the destination region and the token, a second call
// returns the first call's image, and a call that finds a pending (crashed)
// or failed copy for the token completes it. Launch permissions and
// deprecation are not copied.
func (b *Backend) CopyImage(ctx context.Context, in cloud.CopyInput) (cloud.Image, error) {
	img, err := b.copyImage(ctx, in)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("local: copy image %s from region %s to %s: %w", show(in.SourceID), show(in.SourceRegion), show(in.Region), err)
	}
	return img, nil
}

func (b *Backend) copyImage(ctx context.Context, in cloud.CopyInput) (cloud.Image, error) {
	if _, err := b.region(in.SourceRegion); err != nil {
		return cloud.Image{}, err
	}
	dst, err := b.region(in.Region)
	if err != nil {
		return cloud.Image{}, err
	}
	if err := checkImageID("source image id", in.SourceID); err != nil {
		return cloud.Image{}, err
	}
	if in.Name != "" {
		if err := checkName(in.Name); err != nil {
			return cloud.Image{}, err
		}
	}
	if err := errors.Join(checkDescription(in.Description), checkTags(in.Tags), checkToken(in.Token)); err != nil {
		return cloud.Image{}, err
	}

	rec, err := b.claimCopy(ctx, dst, in)
	if err != nil {
		return cloud.Image{}, err
	}
	if rec.State == cloud.StateAvailable {
		return rec.image(dst.name), nil
	}
	src, err := b.region(rec.Source.Region)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("image %s: source: %w", rec.ID, err)
	}
	for _, format := range slices.Sorted(maps.Keys(rec.Formats)) {
		digest := rec.Formats[format]
		via, err := b.transferBlob(ctx, src, rec.Source.ID, dst, digest)
		if err != nil {
			var de *DigestError
			if errors.As(err, &de) {
				if ferr := b.failCopy(ctx, dst, rec.ID, err); ferr != nil {
					err = errors.Join(err, ferr)
				}
			}
			return cloud.Image{}, fmt.Errorf("image %s: %s blob: %w", rec.ID, format, err)
		}
		b.log.Debug("blob in place", "region", dst.name, "image", rec.ID, "format", format, "sha256", digest, "via", via)
	}
	return b.finishCopy(ctx, dst, rec.ID)
}

// claimCopy returns the record of the copy: an available one made earlier
// for the token, a pending or failed one to resume (now pending), or a new
// pending record, which it writes before any blob is moved so that garbage
// collection keeps the blobs the copy puts in place.
func (b *Backend) claimCopy(ctx context.Context, dst *region, in cloud.CopyInput) (*imageRecord, error) {
	id := randomImageID()
	if in.Token != "" {
		id = tokenImageID(dst.name, in.Token)
		// Fast path for reruns, without the lock.
		if rec, err := dst.readRecord(id); err == nil && rec.State == cloud.StateAvailable {
			return rec, nil
		}
	}
	src, _ := b.region(in.SourceRegion)
	srcRec, err := src.readRecord(in.SourceID)
	if err != nil {
		return nil, err
	}
	switch srcRec.State {
	case cloud.StateAvailable:
	case cloud.StatePending:
		return nil, cloud.Mark(fmt.Errorf("source image %s in region %s is still pending", in.SourceID, src.name), cloud.ErrNotYet)
	default:
		return nil, invalidf("source image %s in region %s is %s", in.SourceID, src.name, srcRec.State)
	}

	unlock, err := dst.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for {
		rec, err := dst.readRecord(id)
		if errors.Is(err, cloud.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		if in.Token == "" {
			id = randomImageID() // a collision of random ids: draw again
			continue
		}
		if rec.State == cloud.StateFailed {
			b.log.Info("retrying failed copy", "region", dst.name, "image", id, "error", rec.Error)
			rec.State, rec.Error = cloud.StatePending, ""
			if err := dst.writeRecord(rec); err != nil {
				return nil, err
			}
		}
		return rec, nil
	}
	name := in.Name
	if name == "" {
		name = srcRec.Name
	}
	rec := &imageRecord{
		ID:           id,
		Name:         name,
		Description:  in.Description,
		Architecture: srcRec.Architecture,
		State:        cloud.StatePending,
		Created:      b.now().UTC().Round(0),
		Tags:         maps.Clone(in.Tags),
		Size:         srcRec.Size,
		SHA256:       srcRec.SHA256,
		Formats:      maps.Clone(srcRec.Formats),
		Token:        in.Token,
		Source:       &sourceRef{Region: src.name, ID: srcRec.ID},
	}
	if err := dst.writeRecord(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// finishCopy marks a pending copy available once its blobs are in place.
func (b *Backend) finishCopy(ctx context.Context, dst *region, id string) (cloud.Image, error) {
	unlock, err := dst.lock(ctx)
	if err != nil {
		return cloud.Image{}, err
	}
	defer unlock()
	rec, err := dst.readRecord(id)
	if err != nil {
		return cloud.Image{}, fmt.Errorf("image %s, deleted while copying: %w", id, err)
	}
	switch rec.State {
	case cloud.StateAvailable: // a concurrent call with the same token finished first
		return rec.image(dst.name), nil
	case cloud.StateFailed:
		return cloud.Image{}, fmt.Errorf("image %s failed: %s", id, rec.Error)
	}
	for _, digest := range rec.Formats {
		if _, err := statRegular(dst.blobPath(digest)); err != nil {
			return cloud.Image{}, fmt.Errorf("image %s: blob %s: %w", id, digest, err)
		}
	}
	rec.State = cloud.StateAvailable
	if err := dst.writeRecord(rec); err != nil {
		return cloud.Image{}, err
	}
	return rec.image(dst.name), nil
}

// failCopy marks a pending copy failed with cause and collects the blobs it
// no longer holds, so no bad blob stays in the region.
func (b *Backend) failCopy(ctx context.Context, dst *region, id string, cause error) error {
	unlock, err := dst.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := dst.readRecord(id)
	if err != nil {
		if errors.Is(err, cloud.ErrNotFound) {
			return nil
		}
		return err
	}
	if rec.State == cloud.StatePending {
		rec.State, rec.Error = cloud.StateFailed, cause.Error()
		if err := dst.writeRecord(rec); err != nil {
			return err
		}
	}
	_, err = b.gc(ctx, dst)
	return err
}
