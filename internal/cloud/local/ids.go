package local

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

const (
	idPrefix = "img-"
	idDigits = 17
)

// tokenImageID derives the id of the image made in region for token: a rerun
// with the same token finds the record of the first attempt.
func tokenImageID(region, token string) string {
	sum := sha256.Sum256([]byte("kiln local image\x00" + region + "\x00" + token))
	return idPrefix + hex.EncodeToString(sum[:])[:idDigits]
}

// randomImageID returns a fresh random image id.
func randomImageID() string {
	return idPrefix + randomHex(9)[:idDigits]
}

// isImageID reports whether id has the form of an image id.
func isImageID(id string) bool {
	hexPart, ok := strings.CutPrefix(id, idPrefix)
	return ok && len(hexPart) == idDigits && isLowerHex(hexPart)
}

// checkImageID validates an id given by a caller before it names a file.
func checkImageID(field, id string) error {
	if !isImageID(id) {
		return invalidf("%s %q: want %q followed by %d lower-case hex digits", field, id, idPrefix, idDigits)
	}
	return nil
}

// isDigest reports whether d is a hex sha256 as the blob store names blobs.
func isDigest(d string) bool { return len(d) == 2*sha256.Size && isLowerHex(d) }

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
