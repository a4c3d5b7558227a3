package debimage

import (
	"crypto/sha256"
	"embed"
	"fmt"
	"os"
	"path/filepath"
)

// files holds what the builder puts into images: the guest agent (see the
// package documentation) and the helper that runs file steps in the chroot.
//
//go:embed files/kiln-agent files/kiln-agent.service files/file-step
var files embed.FS

// Where the agent goes in the image.
const (
	agentScript = "/usr/lib/kiln/kiln-agent"
	agentUnit   = "/usr/lib/systemd/system/kiln-agent.service"
	agentWants  = "/etc/systemd/system/multi-user.target.wants/kiln-agent.service"
)

// agentDigest is a digest of the agent's files; it is part of CacheKey, so
// a changed agent makes new base tarballs.
func agentDigest() []byte {
	h := sha256.New()
	for _, name := range []string{"files/kiln-agent", "files/kiln-agent.service"} {
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
