package debimage

import (
	"crypto/sha256"
	"embed"
	"fmt"
	"os"
	"path/filepath"
)

// files holds what the builder puts into images: the guest agent (see the
// package documentation), the initrd's configuration and the helper that
// runs file steps in the chroot.
//
//go:embed files/kiln-agent files/kiln-agent.service files/file-step files/initramfs.conf files/initramfs-hook
var files embed.FS

// Where the agent goes in the image.
const (
	agentScript = "/usr/lib/kiln/kiln-agent"
	agentUnit   = "/usr/lib/systemd/system/kiln-agent.service"
	agentWants  = "/etc/systemd/system/multi-user.target.wants/kiln-agent.service"
)

// Where the initrd's configuration goes: in place before the kernel is
// installed, so the initrd the kernel's installation makes is already the
// small one.
const (
	initramfsConf = "/etc/initramfs-tools/conf.d/kiln.conf"
	initramfsHook = "/etc/initramfs-tools/hooks/kiln-storage"
)

// baseFiles are the embedded files the base gets.
var baseFiles = []string{"files/kiln-agent", "files/kiln-agent.service", "files/initramfs.conf", "files/initramfs-hook"}

// baseDigest is a digest of the files the base gets; it is part of
// CacheKey, so a changed agent or initrd configuration makes new bases.
func baseDigest() []byte {
	h := sha256.New()
	for _, name := range baseFiles {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded at build time: cannot be missing
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(b))
		h.Write(b)
	}
	return h.Sum(nil)
}

// writeFile copies an embedded file to dir and returns its path.
func writeFile(dir, name string) (string, error) {
	b, err := files.ReadFile("files/" + name)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", err
	}
	return p, nil
}
