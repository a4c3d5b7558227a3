package debimage_test

import (
	"encoding/json"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Helpers that read a disk image the way an outsider would: sfdisk for the
// partition table, debugfs for the root filesystem, mtools for the ESP. No
// mounts.

type gptTable struct {
	Label      string `json:"label"`
	ID         string `json:"id"`
	SectorSize int64  `json:"sectorsize"`
	Partitions []struct {
		Start int64  `json:"start"`
		Size  int64  `json:"size"`
		Type  string `json:"type"`
		UUID  string `json:"uuid"`
		Name  string `json:"name"`
	} `json:"partitions"`
}

const (
	typeESP   = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	typeLinux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
)

func readGPT(t *testing.T, disk string) gptTable {
	t.Helper()
	out, err := exec.Command("sfdisk", "--json", disk).Output()
	if err != nil {
		t.Fatalf("sfdisk --json %s: %v", disk, err)
	}
	var v struct {
		PartitionTable gptTable `json:"partitiontable"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("sfdisk --json %s: %v\n%s", disk, err, out)
	}
	return v.PartitionTable
}

// partOffset returns the byte offset of the first partition of type typ.
func partOffset(t *testing.T, disk, typ string) int64 {
	t.Helper()
	g := readGPT(t, disk)
	for _, p := range g.Partitions {
		if strings.EqualFold(p.Type, typ) {
			return p.Start * g.SectorSize
		}
	}
	t.Fatalf("%s: no partition of type %s in %+v", disk, typ, g)
	return 0
}

// rootFS reads files in a disk's root filesystem with debugfs.
type rootFS struct {
	t    *testing.T
	spec string // disk?offset=N
}

func openRoot(t *testing.T, disk string) rootFS {
	return rootFS{t, disk + "?offset=" + strconv.FormatInt(partOffset(t, disk, typeLinux), 10)}
}

func (r rootFS) debugfs(req string) string {
	r.t.Helper()
	out, err := exec.Command("debugfs", "-R", req, r.spec).Output()
	if err != nil {
		r.t.Fatalf("debugfs -R %q %s: %v", req, r.spec, err)
	}
	return string(out)
}

var (
	statTypeRE  = regexp.MustCompile(`Type: (\w+)\s+Mode:\s+([0-7]+)`)
	statOwnerRE = regexp.MustCompile(`User:\s+(\d+)\s+Group:\s+(\d+)`)
)

type inode struct {
	typ      string // regular, directory, symlink
	mode     int64  // permission bits, as debugfs shows them
	uid, gid int
}

// stat returns the inode of path, or ok false when it does not exist.
func (r rootFS) stat(path string) (inode, bool) {
	r.t.Helper()
	out := r.debugfs("stat " + path)
	m, o := statTypeRE.FindStringSubmatch(out), statOwnerRE.FindStringSubmatch(out)
	if m == nil || o == nil {
		return inode{}, false
	}
	mode, _ := strconv.ParseInt(m[2], 8, 64)
	uid, _ := strconv.Atoi(o[1])
	gid, _ := strconv.Atoi(o[2])
	return inode{typ: m[1], mode: mode, uid: uid, gid: gid}, true
}

func (r rootFS) cat(path string) string {
	r.t.Helper()
	return r.debugfs("cat " + path)
}

// esp runs an mtools command on a disk's ESP.
func esp(t *testing.T, disk, tool string, args ...string) string {
	t.Helper()
	img := disk + "@@" + strconv.FormatInt(partOffset(t, disk, typeESP), 10)
	cmd := exec.Command(tool, append([]string{"-i", img}, args...)...)
	cmd.Env = append(cmd.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v on %s: %v\n%s", tool, args, img, err, out)
	}
	return string(out)
}
