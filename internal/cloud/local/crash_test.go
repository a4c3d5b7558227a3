package local

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// crashStore is a store with three regions, "a" and "b" on one filesystem
// and "c" on another, and an 8 MiB source image in "a".
type crashStore struct {
	spec childSpec
	b    *Backend
	src  cloud.Image
	// verified holds the digests checkConsistent computed, by inode and
	// modification time: blobs are immutable, so one hash per version.
	verified map[fileKey]string
}

func newCrashStore(t *testing.T) crashStore {
	t.Helper()
	spec := childSpec{
		Root:        t.TempDir(),
		Regions:     []string{"a", "b", "c"},
		RegionPaths: map[string]string{"c": filepath.Join(otherFilesystem(t), "c")},
	}
	spec.Work = filepath.Join(spec.Root, "work")
	if err := os.MkdirAll(spec.Work, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := New(config.LocalBackend{RegionPaths: spec.RegionPaths}, spec.Root, spec.Regions)
	if err != nil {
		t.Fatal(err)
	}
	src := seed(t, b, "a", "source", nil, 8<<20)
	spec.Source = src.ID
	return crashStore{spec: spec, b: b, src: src, verified: make(map[fileKey]string)}
}

// checkConsistent verifies the invariants after a crash: every record is
// readable, and every available record's blobs are present and match.
// It returns the number of pending records.
func (s crashStore) checkConsistent(t *testing.T) (pending int) {
	t.Helper()
	for _, region := range s.spec.Regions {
		r, _ := s.b.region(region)
		recs, err := r.scanRecords(context.Background(), nil)
		if err != nil {
			t.Fatalf("region %s: %v", region, err)
		}
		for _, rec := range recs {
			if rec.State == cloud.StatePending {
				pending++
			}
			if rec.State != cloud.StateAvailable {
				continue
			}
			for format, d := range rec.Formats {
				p := r.blobPath(d)
				fi, err := os.Stat(p)
				if err != nil {
					t.Errorf("region %s: available image %s lacks its %s blob: %v", region, rec.ID, format, err)
					continue
				}
				key, _ := keyOf(fi)
				got, ok := s.verified[key]
				if !ok {
					got = fileSHA256(t, p)
					s.verified[key] = got
				}
				if got != d {
					t.Errorf("region %s: available image %s: %s blob has sha256 %s, want %s", region, rec.ID, format, got, d)
				}
			}
		}
	}
	return pending
}

// TestCrashConsistency kills a process that copies, imports and deletes in
// a loop at random moments, 20 times, checking the store after each kill;
// then reruns every call with the same tokens and collects garbage: each
// token must end as exactly one available image, and no blob may be left
// that no record references.
func TestCrashConsistency(t *testing.T) {
	s := newCrashStore(t)
	const kills = 20
	pendingSeen := 0
	for i := range kills {
		cmd, out, stderr := startChild(t, "crashloop", s.spec)
		if line := readLine(t, out, stderr, 30*time.Second); line != "ready" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child said %q, stderr: %s", line, stderr)
		}
		time.Sleep(time.Duration(rand.Int64N(int64(300 * time.Millisecond))))
		cmd.Process.Kill()
		err := cmd.Wait()
		if cmd.ProcessState.ExitCode() != -1 { // exited by itself, not killed
			t.Fatalf("kill %d: child exited before it was killed: %v; stderr: %s", i, err, stderr)
		}
		if n := s.checkConsistent(t); n > 0 {
			pendingSeen++
		}
	}
	t.Logf("%d of %d kills left a pending copy behind", pendingSeen, kills)

	// Rerun with the same tokens: everything converges.
	ctx := context.Background()
	for _, dst := range s.spec.Regions {
		for k := range 3 {
			tok := "copy-" + dst + "-" + string(rune('0'+k))
			img, err := s.b.CopyImage(ctx, copyInput("a", s.src.ID, dst, tok))
			if err != nil {
				t.Fatalf("rerun copy %s: %v", tok, err)
			}
			s.expectOne(t, dst, tok, img)
		}
	}
	for k := range 3 {
		tok := "import-" + string(rune('0'+k))
		img, err := s.b.ImportImage(ctx, importInput(s.spec, tok, "final-"+tok))
		if err != nil {
			t.Fatalf("rerun import %s: %v", tok, err)
		}
		s.expectOne(t, "a", tok, img)
	}
	if n := s.checkConsistent(t); n != 0 {
		t.Errorf("%d pending records after the reruns", n)
	}

	// Collect garbage as if an hour had passed: only referenced blobs stay.
	later, err := New(config.LocalBackend{RegionPaths: s.spec.RegionPaths}, s.spec.Root, s.spec.Regions,
		WithClock(func() time.Time { return time.Now().Add(2 * time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range s.spec.Regions {
		st, err := later.GC(ctx, region)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("region %s: GC removed %d blobs (%d bytes) and %d staging files", region, st.Blobs, st.Bytes, st.Temp)
		r, _ := later.region(region)
		recs, err := r.scanRecords(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		referenced := make(map[string]bool)
		for _, rec := range recs {
			if rec.holdsBlobs() {
				for _, d := range rec.Formats {
					referenced[d] = true
				}
			}
		}
		for d, p := range blobFiles(t, later, region) {
			if !referenced[d] {
				t.Errorf("region %s: unreferenced blob %s survived GC", region, p)
			}
		}
		if tmp, _ := os.ReadDir(r.tmpDir()); len(tmp) != 0 {
			t.Errorf("region %s: staging files survived GC: %v", region, tmp)
		}
	}
	s.checkConsistent(t)
}

// expectOne checks that region holds exactly one image made with token,
// available, and that it is img.
func (s crashStore) expectOne(t *testing.T, region, token string, img cloud.Image) {
	t.Helper()
	imgs, err := s.b.ListImages(context.Background(), region, cloud.Filter{Tags: map[string]string{tokenTag: token}})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].ID != img.ID || imgs[0].State != cloud.StateAvailable {
		t.Errorf("region %s, token %s: images %+v, want exactly %s available", region, token, imgs, img.ID)
	}
}

// TestConcurrentCopiesOneImage starts two processes copying with the same
// token at the same moment: both must return the same image, and the
// region must hold exactly one, available and whole.
func TestConcurrentCopiesOneImage(t *testing.T) {
	s := newCrashStore(t)
	for round, dst := range []string{"b", "c", "a", "b", "c"} {
		spec := s.spec
		spec.Dst = dst
		spec.Token = "race-" + string(rune('0'+round))
		spec.Start = time.Now().Add(500 * time.Millisecond).UnixNano()
		var ids [2]string
		var cmds [2]func() string
		for i := range cmds {
			cmd, out, stderr := startChild(t, "copy", spec)
			cmds[i] = func() string {
				line := readLine(t, out, stderr, time.Minute)
				if err := cmd.Wait(); err != nil {
					t.Fatalf("child %d: %v; stderr: %s", i, err, stderr)
				}
				return line
			}
		}
		for i, wait := range cmds {
			ids[i] = wait()
		}
		if ids[0] == "" || ids[0] != ids[1] {
			t.Errorf("round %d: the two processes returned %q and %q", round, ids[0], ids[1])
		}
		s.expectOne(t, dst, spec.Token, cloud.Image{ID: ids[0]})
	}
	if n := s.checkConsistent(t); n != 0 {
		t.Errorf("%d pending records left", n)
	}
}
