package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// RegionMarker is the file the local backend writes into a region
// directory when it makes it. A directory that holds anything else and no
// marker is not kiln's: kiln refuses to store images there, since
// collecting garbage in it would delete someone's files.
const RegionMarker = ".kiln-region"

// regionLayout are the entries the local backend makes in a region
// directory; a directory holding only these was made by a kiln older
// than the marker.
var regionLayout = []string{RegionMarker, "images", "blobs", "assets", "tmp", "lock", "claims"}

// systemTrees are directories kiln never stores in or below; systemDirs
// are directories it never stores in itself (a directory of its own below
// them is fine).
var (
	systemTrees = []string{"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
		"/sbin", "/sys", "/usr/bin", "/usr/include", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec", "/usr/sbin", "/usr/share"}
	systemDirs = []string{"/", "/home", "/media", "/mnt", "/opt", "/root", "/run", "/srv", "/tmp", "/usr", "/usr/local",
		"/var", "/var/cache", "/var/lib", "/var/log", "/var/tmp"}
)

// CheckStoreDir refuses dir as the local backend's store root or a region
// directory when it is the filesystem root, the home directory or a system
// directory, or lies inside a system tree such as /etc. It looks at the
// path as given and, when it exists, with symbolic links resolved.
func CheckStoreDir(dir string) error {
	home, _ := os.UserHomeDir()
	paths := []string{filepath.Clean(dir)}
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != paths[0] {
		paths = append(paths, real)
	}
	for _, p := range paths {
		switch {
		case p == "/":
			return fmt.Errorf("%s is the filesystem root; give kiln's images a directory of their own", dir)
		case home != "" && home != "/" && p == filepath.Clean(home):
			return fmt.Errorf("%s is the home directory; give kiln's images a directory of their own", dir)
		case slices.Contains(systemDirs, p) || slices.Contains(systemTrees, p):
			return fmt.Errorf("%s is a system directory; give kiln's images a directory of their own", dir)
		}
		for _, t := range systemTrees {
			if strings.HasPrefix(p, t+"/") {
				return fmt.Errorf("%s lies inside the system directory %s; give kiln's images a directory of their own", dir, t)
			}
		}
	}
	return nil
}

// CheckRegionDir refuses a region directory kiln did not make: one that
// holds entries besides the local backend's layout and has no marker. An
// absent or empty directory is fine: kiln makes it, marker first.
func CheckRegionDir(dir string) error {
	if err := CheckStoreDir(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var foreign []string
	for _, e := range entries {
		if e.Name() == RegionMarker {
			return nil
		}
		if !slices.Contains(regionLayout, e.Name()) {
			foreign = append(foreign, e.Name())
		}
	}
	if len(foreign) == 0 {
		return nil
	}
	more := ""
	if len(foreign) > 3 {
		foreign, more = foreign[:3], ", …"
	}
	return fmt.Errorf("directory %s holds files kiln did not make (%s%s) and no %s marker; give the region an empty or new directory",
		dir, strings.Join(foreign, ", "), more, RegionMarker)
}
