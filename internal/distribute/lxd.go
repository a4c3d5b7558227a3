package distribute

import (
	"archive/tar"
	"bytes"
	"fmt"
	"time"

	"github.com/ulikunitz/xz"
)

// lxdMetadata is LXD's metadata tarball of a VM image (ftype lxd.tar.xz):
// metadata.yaml alone, which LXD reads when it imports the image. With a
// qcow2 disk (ftype disk-kvm.img) it makes the version an image that `lxc
// image list|export|launch` find. The tarball's bytes depend only on its
// arguments, so a rerun makes the same file.
func lxdMetadata(project, useCase, arch, label, serial string, created time.Time) ([]byte, error) {
	yaml := fmt.Sprintf(`architecture: %s
creation_date: %d
properties:
  architecture: %s
  description: %s %s %s (%s)
  os: %s
  release: %s
  serial: "%s"
  version: "%s"
templates: {}
`, arch, created.Unix(), arch, project, useCase, label, arch, project, useCase, serial, label)
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	hdr := &tar.Header{Name: "metadata.yaml", Mode: 0o644, Size: int64(len(yaml)), ModTime: created.UTC().Truncate(time.Second), Format: tar.FormatUSTAR}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := tw.Write([]byte(yaml)); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	zw, err := xz.NewWriter(&out)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(tarBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
