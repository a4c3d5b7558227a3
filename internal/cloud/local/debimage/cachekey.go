package debimage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
)

// formatVersion names the way the builder makes base tarballs (variant,
// hooks, layout). Change it whenever base.go changes what goes into the
// tarball, so that old cache entries stop matching. The files it puts
// into the base are hashed into the key on their own.
const formatVersion = "4"

// CacheKey is the name of the base root filesystem s needs: a sha256 over
// the builder's format version and the files it adds (guest agent, initrd
// configuration), the suite, mirror and architecture (defaults applied)
// and the sorted package list, including the packages the builder adds.
func CacheKey(s Spec) string {
	if s.Suite == "" {
		s.Suite = DefaultSuite
	}
	if s.Mirror == "" {
		s.Mirror = DefaultMirror
	}
	h := sha256.New()
	field := func(w io.Writer, v string) { fmt.Fprintf(w, "%d:%s\x00", len(v), v) }
	field(h, "kiln debimage base "+formatVersion)
	field(h, hex.EncodeToString(baseDigest()))
	field(h, s.Suite)
	field(h, s.Mirror)
	field(h, s.Arch)
	pkgs := s.packages()
	field(h, fmt.Sprint(len(pkgs)))
	for _, p := range pkgs {
		field(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))
}
