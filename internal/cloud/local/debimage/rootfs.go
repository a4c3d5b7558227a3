package debimage

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// rootInfo is what the builder needs to know about a root filesystem
// tarball before writing it to disk.
type rootInfo struct {
	dataBytes int64    // regular file contents, each rounded up to a 4 KiB block
	dirs      int      // directories (each takes at least a block)
	kernels   []string // versions with both /boot/vmlinuz-V and /boot/initrd.img-V
	defKernel string   // the version /vmlinuz points to, if it does
}

// scanRoot reads the tarball once: it sizes the root filesystem and copies
// the kernels and initrds to bootDir, for the ESP.
func scanRoot(tarPath, bootDir string) (rootInfo, error) {
	var info rootInfo
	f, err := os.Open(tarPath)
	if err != nil {
		return info, err
	}
	defer f.Close()
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		return info, err
	}
	vmlinuz, initrd := map[string]bool{}, map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return info, fmt.Errorf("read %s: %w", tarPath, err)
		}
		name := path.Clean("/" + h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			info.dirs++
		case tar.TypeSymlink:
			if name == "/vmlinuz" {
				if v, ok := strings.CutPrefix(path.Base(h.Linkname), "vmlinuz-"); ok {
					info.defKernel = v
				}
			}
		case tar.TypeReg:
			info.dataBytes += (h.Size + 4095) / 4096 * 4096
			dir, base := path.Split(name)
			if dir != "/boot/" {
				continue
			}
			if v, ok := strings.CutPrefix(base, "vmlinuz-"); ok {
				vmlinuz[v] = true
			} else if v, ok := strings.CutPrefix(base, "initrd.img-"); ok {
				initrd[v] = true
			} else {
				continue
			}
			if err := copyOut(tr, filepath.Join(bootDir, base)); err != nil {
				return info, err
			}
		}
	}
	for v := range vmlinuz {
		if initrd[v] {
			info.kernels = append(info.kernels, v)
		}
	}
	slices.Sort(info.kernels)
	return info, nil
}

// scanDir is scanRoot for a root filesystem in a directory; its kernels
// stay in dir/boot. A file with several links counts once, as in a
// tarball.
func scanDir(dir string) (rootInfo, error) {
	var info rootInfo
	vmlinuz, initrd := map[string]bool{}, map[string]bool{}
	linked := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := "/" + strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		switch t := d.Type(); {
		case t.IsDir():
			info.dirs++
		case t&fs.ModeSymlink != 0:
			if name == "/vmlinuz" {
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				if v, ok := strings.CutPrefix(path.Base(target), "vmlinuz-"); ok {
					info.defKernel = v
				}
			}
		case t.IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
				if linked[st.Ino] {
					return nil
				}
				linked[st.Ino] = true
			}
			info.dataBytes += (fi.Size() + 4095) / 4096 * 4096
			dir, base := path.Split(name)
			if dir != "/boot/" {
				return nil
			}
			if v, ok := strings.CutPrefix(base, "vmlinuz-"); ok {
				vmlinuz[v] = true
			} else if v, ok := strings.CutPrefix(base, "initrd.img-"); ok {
				initrd[v] = true
			}
		}
		return nil
	})
	if err != nil {
		return info, fmt.Errorf("read root filesystem %s: %w", dir, err)
	}
	for v := range vmlinuz {
		if initrd[v] {
			info.kernels = append(info.kernels, v)
		}
	}
	slices.Sort(info.kernels)
	return info, nil
}

func copyOut(r io.Reader, p string) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// kernel picks the kernel to boot: the one /vmlinuz names, else the only
// one there is.
func (ri rootInfo) kernel() (string, error) {
	switch {
	case ri.defKernel != "" && slices.Contains(ri.kernels, ri.defKernel):
		return ri.defKernel, nil
	case len(ri.kernels) == 1:
		return ri.kernels[0], nil
	case len(ri.kernels) == 0:
		return "", errors.New("no kernel with an initrd in /boot of the root filesystem (is linux-image-amd64 installed, with initramfs-tools?)")
	default:
		return "", fmt.Errorf("several kernels in /boot (%s) and no /vmlinuz link saying which to boot", strings.Join(ri.kernels, ", "))
	}
}

// fits checks that the root filesystem fits its partition, allowing for
// ext4's own needs: inode tables (a 256-byte inode per 16 KiB), the journal
// (64 MiB up to 16 GiB) and about 1% for bitmaps and slack. It is an
// estimate; mkfs.ext4 has the last word.
func (ri rootInfo) fits(partBytes, diskSize int64) error {
	need := ri.dataBytes + int64(ri.dirs)*4096
	overhead := partBytes/64 + 64*mib + partBytes/100
	if have := partBytes - overhead; need > have {
		return fmt.Errorf("disk size %d MiB is too small: the root filesystem needs about %d MiB and the root partition has room for about %d MiB",
			diskSize/mib, need/mib+1, max(have, 0)/mib)
	}
	return nil
}

// writeRoot writes the tree into the root partition with mkfs.ext4 -d:
// a directory as it is, a tarball by way of writeRootTar.
func (b *builder) writeRoot(ctx context.Context, t tree, disk string, root gptPartition, l layout) error {
	if t.tar != "" {
		return b.writeRootTar(ctx, t.tar, disk, root, l)
	}
	args := append([]string{"-q", "-F", "-b", "4096", "-d", t.dir}, mkfsArgs(disk, root, l)...)
	if _, err := run(ctx, b.log, command{name: "mkfs.ext4", args: args}); err != nil {
		return fmt.Errorf("write root filesystem to %s: %w", disk, err)
	}
	return nil
}

// mkfsArgs are mkfs.ext4's arguments after -d: the filesystem's identity,
// its place and its size.
func mkfsArgs(disk string, root gptPartition, l layout) []string {
	return []string{
		"-L", "root", "-U", l.fsUUID,
		"-E", "offset=" + strconv.FormatInt(root.start, 10) + ",hash_seed=" + l.hashSeed,
		disk, strconv.FormatInt(root.size/1024, 10) + "k",
	}
}

// writeRootTar unpacks the tarball into a scratch directory and writes it
// into the root partition with mkfs.ext4 -d. As a normal user both happen
// in a user namespace where the user is root and their subordinate ids
// stand for the image's other owners, as in mmdebstrap's unshare mode.
func (b *builder) writeRootTar(ctx context.Context, tarPath, disk string, root gptPartition, l layout) error {
	dir := filepath.Join(b.s.WorkDir, "rootfs")
	// /dev stays empty: device nodes cannot be made in a user namespace,
	// and the kernel mounts devtmpfs there anyway.
	const script = `set -e
dir=$1 tar=$2
trap 'rm -rf "$dir"' EXIT
rm -rf "$dir"
mkdir "$dir"
tar --numeric-owner --xattrs --xattrs-include='*' --exclude='./dev/*' -xpf "$tar" -C "$dir"
shift 2
mkfs.ext4 -q -F -b 4096 -d "$dir" "$@"
`
	args := append([]string{"-c", script, "sh", dir, tarPath}, mkfsArgs(disk, root, l)...)
	c := command{name: "sh", args: args}
	if b.unshare {
		var err error
		if c, err = inUserNamespace(c); err != nil {
			return err
		}
	}
	if _, err := run(ctx, b.log, c); err != nil {
		return fmt.Errorf("write root filesystem to %s: %w", disk, err)
	}
	return nil
}
