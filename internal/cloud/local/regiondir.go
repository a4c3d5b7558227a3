package local

import (
	"os"
	"path/filepath"
	"regexp"

	"github.com/kiln-images/kiln/internal/config"
)

// writeMarker records that kiln made the region directory (see
// config.RegionMarker): from then on it is known to be kiln's.
func (r *region) writeMarker() error {
	p := filepath.Join(r.dir, config.RegionMarker)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	return os.WriteFile(p, []byte("kiln image store region "+r.name+"; kiln manages every file here\n"), 0o644)
}

// stagingName matches the names of the staging files kiln writes in a
// region's tmp/ (os.CreateTemp's decimal suffix, randomHex's hex one).
var stagingName = regexp.MustCompile(`^(write|clone|link|copy|import)-[0-9a-f]{1,32}$`)
