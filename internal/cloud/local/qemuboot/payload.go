package qemuboot

import (
	"archive/tar"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// writePayload writes the archive the guest agent reads from fw_cfg:
// "order" (test names, one a line), "timeout" (per-test seconds) and
// "tests/<name>" for each script.
func writePayload(path string, tests []string, perTest time.Duration) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	// Fixed times and owners: the archive depends only on the tests.
	epoch := time.Unix(0, 0)
	add := func(name string, mode int64, body []byte) error {
		h := &tar.Header{Name: name, Mode: mode, Size: int64(len(body)), ModTime: epoch, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(body)
		return err
	}
	var order strings.Builder
	for _, t := range tests {
		order.WriteString(filepath.Base(t) + "\n")
	}
	secs := int64(math.Ceil(perTest.Seconds()))
	if err := add("order", 0o644, []byte(order.String())); err != nil {
		return err
	}
	if err := add("timeout", 0o644, []byte(fmt.Sprintf("%d\n", secs))); err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: "tests/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatUSTAR}); err != nil {
		return err
	}
	for _, t := range tests {
		body, err := os.ReadFile(t)
		if err != nil {
			return fmt.Errorf("test %s: %w", t, err)
		}
		if err := add("tests/"+filepath.Base(t), 0o755, body); err != nil {
			return err
		}
	}
	return tw.Close()
}
