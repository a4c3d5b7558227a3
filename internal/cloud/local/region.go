package local

import (
	"os"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/cloud"
)

// region is one region's directory. Its methods build paths only from
// validated ids and digests.
type region struct {
	name  string
	dir   string
	cache *recordCache
}

func (r *region) imagesDir() string { return filepath.Join(r.dir, "images") }
func (r *region) blobsDir() string  { return filepath.Join(r.dir, "blobs", "sha256") }
func (r *region) assetsDir() string { return filepath.Join(r.dir, "assets") }
func (r *region) tmpDir() string    { return filepath.Join(r.dir, "tmp") }
func (r *region) lockPath() string  { return filepath.Join(r.dir, "lock") }

func (r *region) recordPath(id string) string {
	return filepath.Join(r.imagesDir(), id+".json")
}

// blobPath is where the blob with the given hex sha256 lives; the first two
// digits name a subdirectory so no directory grows too large.
func (r *region) blobPath(digest string) string {
	return filepath.Join(r.blobsDir(), digest[:2], digest)
}

func (r *region) assetKindDir(kind cloud.Kind) string {
	return filepath.Join(r.assetsDir(), string(kind))
}

func (r *region) assetPath(kind cloud.Kind, id string) string {
	return filepath.Join(r.assetKindDir(kind), id+".json")
}

// ensure creates the region's directories, the marker first: from then
// on the directory is known to be kiln's.
func (r *region) ensure() error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	if err := r.writeMarker(); err != nil {
		return err
	}
	for _, d := range []string{
		r.imagesDir(), r.blobsDir(), r.tmpDir(),
		r.assetKindDir(cloud.KindBuild), r.assetKindDir(cloud.KindInstance),
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}
