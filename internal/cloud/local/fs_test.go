package local

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// otherFilesystem returns an empty directory on a filesystem other than the
// one t.TempDir uses: a tmpfs mounted for the test (needs CAP_SYS_ADMIN),
// else a directory in /dev/shm when that is a separate filesystem. Without
// either the test cannot check cross-filesystem copies and fails.
func otherFilesystem(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mountErr := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1g,mode=0755")
	if mountErr == nil {
		t.Cleanup(func() {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		})
		return dir
	}
	if dev(t, "/dev/shm") != dev(t, dir) {
		d, err := os.MkdirTemp("/dev/shm", "kiln-test-*")
		if err != nil {
			t.Fatalf("need a second filesystem: mount tmpfs on %s: %v; /dev/shm: %v", dir, mountErr, err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	t.Fatalf("need a second filesystem for this test: mount tmpfs on %s: %v, and /dev/shm is on the same filesystem as %s", dir, mountErr, dir)
	return ""
}

func dev(t testing.TB, path string) uint64 {
	t.Helper()
	d, err := statDev(path)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func statT(t testing.TB, path string) *syscall.Stat_t {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t)
}

// freeBytes returns the free bytes of the filesystem holding path.
func freeBytes(t testing.TB, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bfree) * st.Bsize
}

// reflinkFilesystem returns an empty directory on a fresh XFS filesystem
// with reflink support, made in a sparse file and loop-mounted for the
// test. It needs mkfs.xfs (Debian package xfsprogs), loop devices and
// CAP_SYS_ADMIN, and fails clearly without them.
func reflinkFilesystem(t *testing.T) string {
	t.Helper()
	mkfs, err := exec.LookPath("mkfs.xfs")
	if err != nil {
		t.Fatalf("this test needs mkfs.xfs (Debian package xfsprogs) to make a filesystem with reflinks: %v", err)
	}
	img := filepath.Join(t.TempDir(), "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 512<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-m", "reflink=1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v: %s", err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Fatalf("this test needs to loop-mount an XFS image (root, loop devices): mount: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
