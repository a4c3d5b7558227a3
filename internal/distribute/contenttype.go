package distribute

import (
	"path"
	"strings"
)

// ContentType is the media type a file of a tree is served with, from its
// name (never sniffed): by kiln serve and as S3 object metadata.
func ContentType(p string) string {
	base := path.Base(p)
	switch {
	case base == SumsFile, strings.HasSuffix(base, SigSuffix):
		return "text/plain; charset=utf-8"
	case strings.HasSuffix(base, ".json"):
		return "application/json"
	case strings.HasSuffix(base, ".md"):
		return "text/markdown; charset=utf-8"
	case strings.HasSuffix(base, ".gz"):
		return "application/gzip"
	case strings.HasSuffix(base, ".xz"):
		return "application/x-xz"
	case strings.HasSuffix(base, ".qcow2"):
		return "application/x-qemu-disk"
	case strings.HasSuffix(base, ".vmdk"):
		return "application/x-vmdk"
	}
	return "application/octet-stream"
}
