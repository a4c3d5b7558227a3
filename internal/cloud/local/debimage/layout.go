package debimage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
)

// GPT partition type GUIDs.
const (
	typeESP   = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" // EFI System
	typeLinux = "0FC63DAF-8483-4772-8E79-3D69D8477DE4" // Linux filesystem data
)

const (
	sectorSize = 512
	espStart   = 1 * mib // the usual 1 MiB alignment
)

// layout is the disk's partitioning and filesystem identities. Every UUID
// is derived from the build's inputs, so the same input gives the same
// layout; partition places beyond the ESP come from sfdisk (see
// partition).
type layout struct {
	size                        int64 // disk bytes
	diskUUID, espUUID, rootUUID string
	fsUUID, hashSeed            string // ext4 filesystem UUID and directory hash seed
	espVolumeID                 string // FAT volume serial, 8 hex digits
}

// newLayout derives a layout from s and its steps.
func newLayout(s Spec, key string, steps []step) layout {
	h := sha256.New()
	field := func(w io.Writer, v string) { fmt.Fprintf(w, "%d:%s\x00", len(v), v) }
	field(h, "kiln debimage layout 1")
	field(h, key)
	field(h, fmt.Sprint(s.DiskSize))
	for _, st := range steps {
		field(h, st.kind)
		field(h, st.label)
		field(h, st.dest)
		field(h, st.mode)
		field(h, st.owner)
		keys := make([]string, 0, len(st.vars))
		for k := range st.vars {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			field(h, k+"="+st.vars[k])
		}
	}
	seed := h.Sum(nil)
	return layout{
		size:        s.DiskSize,
		diskUUID:    uuidFrom(seed, "disk"),
		espUUID:     uuidFrom(seed, "esp"),
		rootUUID:    uuidFrom(seed, "root"),
		fsUUID:      uuidFrom(seed, "root filesystem"),
		hashSeed:    uuidFrom(seed, "root filesystem hash seed"),
		espVolumeID: strings.ToUpper(hex.EncodeToString(digest(seed, "esp volume")[:4])),
	}
}

// uuidFrom derives a UUID from seed and label: an RFC 9562 version 8
// (custom) UUID over SHA-256.
func uuidFrom(seed []byte, label string) string {
	b := digest(seed, label)[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	x := strings.ToUpper(hex.EncodeToString(b))
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

func digest(seed []byte, label string) []byte {
	h := sha256.New()
	h.Write(seed)
	h.Write([]byte{0})
	h.Write([]byte(label))
	return h.Sum(nil)
}

// sfdiskScript is the partition table: the ESP at 1 MiB, the root after it
// up to the end of the disk (sfdisk aligns its end).
func (l layout) sfdiskScript() string {
	return fmt.Sprintf(`label: gpt
label-id: %s
unit: sectors
first-lba: %d
start=%d, size=%d, type=%s, uuid=%s, name="ESP"
start=%d, type=%s, uuid=%s, name="root"
`, l.diskUUID, espStart/sectorSize,
		espStart/sectorSize, espSize/sectorSize, typeESP, l.espUUID,
		(espStart+espSize)/sectorSize, typeLinux, l.rootUUID)
}

// fstab mounts the root and the ESP by partition UUID.
func (l layout) fstab() string {
	return fmt.Sprintf(`# Written by kiln when the image was built.
PARTUUID=%s / ext4 rw,errors=remount-ro 0 1
PARTUUID=%s /boot/efi vfat umask=0077,nofail 0 2
`, strings.ToLower(l.rootUUID), strings.ToLower(l.espUUID))
}
