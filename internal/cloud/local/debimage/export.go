package debimage

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// qemuImgArgs are the qemu-img convert options per export format. vmdk is
// qemu's default monolithicSparse (streamOptimized is smaller but several
// times slower to write); vhd is fixed with force_size so the virtual size
// is exactly the disk's (a dynamic vhd rounds it up to its CHS geometry).
var qemuImgArgs = map[string][]string{
	"qcow2": {"-O", "qcow2"},
	"vmdk":  {"-O", "vmdk"},
	"vhd":   {"-O", "vpc", "-o", "subformat=fixed,force_size=on"},
}

// export writes the disk in format next to it and returns the path; raw is
// the disk itself.
func (b *builder) export(ctx context.Context, disk, format string) (string, error) {
	if format == "raw" {
		return disk, nil
	}
	args, ok := qemuImgArgs[format]
	if !ok {
		return "", fmt.Errorf("export format %q: unknown", format)
	}
	out := filepath.Join(filepath.Dir(disk), strings.TrimSuffix(filepath.Base(disk), filepath.Ext(disk))+"."+format)
	args = append([]string{"convert", "-f", "raw"}, args...)
	args = append(args, disk, out)
	if _, err := run(ctx, b.log, command{name: "qemu-img", args: args}); err != nil {
		return "", fmt.Errorf("export %s as %s: %w", disk, format, err)
	}
	// qemu-img convert does not flush its output; the import syncs it.
	startWriteback(out)
	return out, nil
}
