package local

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

var _ cloud.AssetTagger = (*Backend)(nil)

// TagAsset adds or replaces tags on an image (TagImage) or on the record of
// a build or instance.
func (b *Backend) TagAsset(ctx context.Context, a cloud.Asset, tags map[string]string) error {
	if a.Kind == cloud.KindImage {
		return b.TagImage(ctx, a.Region, a.ID, tags)
	}
	if err := b.tagAsset(ctx, a, tags); err != nil {
		return fmt.Errorf("local: tag %s asset %s in region %s: %w", show(string(a.Kind)), show(a.ID), show(a.Region), err)
	}
	return nil
}

func (b *Backend) tagAsset(ctx context.Context, a cloud.Asset, tags map[string]string) error {
	r, err := b.assetRegion(a)
	if err != nil {
		return err
	}
	if err := checkTags(tags); err != nil {
		return err
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := r.readAsset(a.Kind, a.ID)
	if err != nil {
		return err
	}
	merged := maps.Clone(rec.Tags)
	if merged == nil {
		merged = map[string]string{}
	}
	maps.Copy(merged, tags)
	if err := checkTags(merged); err != nil {
		return err
	}
	rec.Tags = merged
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(r.tmpDir(), r.assetPath(a.Kind, a.ID), append(data, '\n'), time.Time{})
}
