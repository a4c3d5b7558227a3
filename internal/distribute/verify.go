package distribute

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/minisign"
)

// ImageCheck is what `kiln verify --image` found out about a download.
type ImageCheck struct {
	File     string  `json:"file"`
	Size     int64   `json:"size"`
	SHA256   string  `json:"sha256"`
	Index    string  `json:"index"`
	Signer   string  `json:"signer"` // key id the index is signed with
	Verified bool    `json:"verified"`
	Matches  []Entry `json:"matches"`
	// Problem says why the file is not verified.
	Problem string `json:"problem,omitempty"`
}

// VerifyImage checks a downloaded file against a signed index: the
// index's signature with key, the products' checksums and signatures,
// and the file's sha256 — or, for a file someone decompressed, the
// uncompressed sha256 of a compressed item. A file no item matches is
// not verified (Problem says why); an error means the check could not be
// made.
func VerifyImage(ctx context.Context, f Fetcher, key minisign.PublicKey, file string) (*ImageCheck, error) {
	chk := &ImageCheck{File: file, Index: f.Name(), Matches: []Entry{}}
	digest, size, err := hashLocalFile(ctx, file)
	if err != nil {
		return chk, err
	}
	chk.SHA256, chk.Size = digest, size
	cat, err := LoadCatalogRetry(ctx, f, &key, 2*time.Second)
	if err != nil {
		var se *TrustError
		if errors.As(err, &se) {
			chk.Problem = err.Error()
			return chk, nil
		}
		return chk, err
	}
	chk.Signer = cat.Signer
	var byName []Entry
	for _, e := range cat.Entries() {
		if e.SHA256 == digest || e.UncompressedSHA256 == digest {
			chk.Matches = append(chk.Matches, e)
		}
		if path.Base(e.Path) == filepath.Base(file) || strings.TrimSuffix(path.Base(e.Path), ".gz") == filepath.Base(file) {
			byName = append(byName, e)
		}
	}
	if len(chk.Matches) > 0 {
		chk.Verified = true
		return chk, nil
	}
	if len(byName) == 0 {
		chk.Problem = fmt.Sprintf("no file in the index has sha256 %s (and none is named %s)", digest, filepath.Base(file))
		return chk, nil
	}
	e := byName[0]
	want, wantSize := e.SHA256, e.Size
	if !strings.HasSuffix(file, ".gz") && e.UncompressedSHA256 != "" {
		want, wantSize = e.UncompressedSHA256, e.Item.UncompressedSize
	}
	chk.Problem = fmt.Sprintf("%s has sha256 %s and %d bytes; the index gives %s for %s with %s and %d bytes: the download is corrupt or incomplete",
		filepath.Base(file), digest, size, e.Path, cmp.Or(e.Label, e.Version), want, wantSize)
	return chk, nil
}

// hashLocalFile returns the sha256 and size of a local file.
func hashLocalFile(ctx context.Context, file string) (string, int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.CopyBuffer(h, ctxReader{ctx, f}, make([]byte, 1<<20))
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
