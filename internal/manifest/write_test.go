package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

// dirNames lists the names in dir, to catch leftover temporary files.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteNewAndReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stable.json")
	m := bigManifest()
	if err := Write(path, m); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, m.Encode()) {
		t.Fatal("written file differs from Encode")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("new file mode = %v; want 0644", fi.Mode().Perm())
	}

	// Replacing keeps the file's mode.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	small := Manifest{"aws-linux-ephemeral": {"us-east-1": designEntry}}
	if err := Write(path, small); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(small) {
		t.Errorf("after replacing, Load = %v", got)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("replaced file mode = %v; want 0600 kept", fi.Mode().Perm())
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"stable.json"}) {
		t.Errorf("directory holds %v", names)
	}
}

// failAfter lets n bytes through and then fails, like a full disk.
type failAfter struct {
	w io.Writer
	n int
}

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		k, _ := f.w.Write(p[:f.n])
		return k, errors.New("no space left on device")
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestWriteFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stable.json")
	old := readTestdata(t, "design.json")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	err := writeAtomic(path, bigManifest().Encode(), func(w io.Writer) io.Writer { return &failAfter{w: w, n: 100} })
	if err == nil {
		t.Fatal("writeAtomic with a failing writer succeeded")
	}
	if want := "write manifest " + path + ": no space left on device"; err.Error() != want {
		t.Errorf("error = %q; want %q", err, want)
	}
	if data, _ := os.ReadFile(path); !bytes.Equal(data, old) {
		t.Errorf("old file changed:\n%s", data)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"stable.json"}) {
		t.Errorf("temporary file left behind: %v", names)
	}
}

func TestWriteDestinationIsDirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stable.json")
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(path, "keep")
	if err := os.WriteFile(inside, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Write(path, bigManifest())
	if err == nil || err.Error() != "write manifest "+path+": is a directory" {
		t.Fatalf("Write over a directory: %v", err)
	}
	if _, err := os.Stat(inside); err != nil {
		t.Errorf("directory content lost: %v", err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"stable.json"}) {
		t.Errorf("temporary file left behind: %v", names)
	}
}

// A failing rename must clean up too: here a non-empty directory appears at
// the destination after Write checked it, so rename(2) refuses.
func TestWriteRenameFailureCleansUp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stable.json")
	err := writeAtomic(path, []byte("{}\n"), func(w io.Writer) io.Writer {
		// Between the Stat and the rename, someone puts a non-empty
		// directory where the file should go.
		if err := os.MkdirAll(filepath.Join(path, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		return w
	})
	if err == nil {
		t.Fatal("rename over a non-empty directory succeeded")
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"stable.json"}) {
		t.Errorf("temporary file left behind: %v", names)
	}
}

func TestWriteMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "stable.json")
	if err := Write(path, Manifest{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Write into a missing directory: %v; want fs.ErrNotExist", err)
	}
}

func TestWriteThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "real.json")
	link := filepath.Join(dir, "stable.json")
	if err := os.WriteFile(target, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.json", link); err != nil {
		t.Fatal(err)
	}
	m := Manifest{"aws-linux-ephemeral": {"us-east-1": designEntry}}
	if err := Write(link, m); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("symlink replaced by a file: %v %v", fi.Mode(), err)
	}
	if data, _ := os.ReadFile(target); !bytes.Equal(data, m.Encode()) {
		t.Fatalf("target not updated:\n%s", data)
	}
}

// Concurrent writers and a reader: every read and the final file are one
// complete version, never a mix, and no temporary file remains.
func TestWriteConcurrent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stable.json")
	const writers, rounds = 8, 25

	// Each version is large (hundreds of KiB) so a torn write would show.
	versions := make([]Manifest, writers)
	encoded := make(map[string]int)
	for i := range versions {
		m := Manifest{}
		for r := range 2000 {
			m.Set(fmt.Sprintf("use-case-%d", r%40), fmt.Sprintf("region-%d", r), Entry{
				Architecture: "x86_64", ID: "ami-" + hex17(i*10000+r), Name: fmt.Sprintf("writer %d", i), Public: i%2 == 0,
			})
		}
		versions[i] = m
		encoded[string(m.Encode())] = i
	}
	if err := Write(path, versions[0]); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	done := make(chan struct{})
	readErrs := make(chan error, 1)
	go func() {
		defer close(readErrs)
		reads := 0
		for {
			select {
			case <-done:
				if reads == 0 {
					readErrs <- errors.New("the reader never ran")
				}
				return
			default:
			}
			data, err := os.ReadFile(path)
			if err != nil {
				readErrs <- err
				return
			}
			if _, ok := encoded[string(data)]; !ok {
				readErrs <- fmt.Errorf("read %d bytes that are no writer's version", len(data))
				return
			}
			reads++
		}
	}()
	errs := make(chan error, writers*rounds)
	for i := range writers {
		wg.Go(func() {
			for range rounds {
				errs <- Write(path, versions[i])
			}
		})
	}
	wg.Wait()
	close(done)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := <-readErrs; err != nil {
		t.Error(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := encoded[string(data)]; !ok {
		t.Error("final file is no writer's version")
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"stable.json"}) {
		t.Errorf("directory holds %v", names)
	}
}
