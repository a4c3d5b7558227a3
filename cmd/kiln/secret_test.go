package main

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// secretIn returns where the secret value turns up: the files under each
// of dirs (read as a stream, so 2 GiB disks are fine) and the named
// outputs.
func secretIn(t *testing.T, secret string, dirs []string, outputs map[string]string) []string {
	t.Helper()
	var found []string
	for name, out := range outputs {
		if bytes.Contains([]byte(out), []byte(secret)) {
			found = append(found, name)
		}
	}
	seen := map[[2]uint64]bool{} // the store hard-links one blob into every region
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			if info, err := d.Info(); err == nil {
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					key := [2]uint64{uint64(st.Dev), st.Ino}
					if seen[key] {
						return nil
					}
					seen[key] = true
				}
			}
			ok, err := streamContains(p, []byte(secret))
			if err != nil {
				return err
			}
			if ok {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found
}

func streamContains(path string, s []byte) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	var tail []byte
	for {
		n, err := f.Read(buf)
		chunk := append(tail, buf[:n]...)
		if bytes.Contains(chunk, s) {
			return true, nil
		}
		if len(chunk) >= len(s) {
			tail = append([]byte(nil), chunk[len(chunk)-len(s)+1:]...)
		} else {
			tail = chunk
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}
