package local

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/kiln-images/kiln/internal/cloud"
)

var _ cloud.ExportLister = (*Backend)(nil)

// ImageExports lists the image's exports: its disk in each format besides
// raw, as the blob files that hold them (shared, read-only), with their
// size and sha256.
func (b *Backend) ImageExports(ctx context.Context, region, id string) ([]cloud.Export, error) {
	r, rec, err := b.lookup(region, id)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return r.exports(rec), nil
}

// exports lists rec's export formats in format order. A blob that cannot
// be read has size 0: the listing reports what is there, verification is
// the store's job.
func (r *region) exports(rec *imageRecord) []cloud.Export {
	var out []cloud.Export
	for _, format := range slices.Sorted(maps.Keys(rec.Formats)) {
		if format == formatRaw {
			continue
		}
		digest := rec.Formats[format]
		e := cloud.Export{Format: format, Location: r.blobPath(digest), SHA256: digest}
		if st, err := os.Stat(e.Location); err == nil {
			e.Size = st.Size()
		}
		out = append(out, e)
	}
	return out
}
