package distribute

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/minisign"
)

var t0 = time.Date(2026, 11, 21, 9, 30, 12, 0, time.UTC)

// world is a local tree and the files releases are taken from.
type world struct {
	t     *testing.T
	dir   string // the tree
	src   string // where the "store blobs" are
	key   minisign.PrivateKey
	pub   *Publisher
	clock time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	key, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, dir: filepath.Join(t.TempDir(), "dist"), src: t.TempDir(), key: key, clock: t0}
	w.pub = &Publisher{Store: &LocalStore{Dir: w.dir}, Project: "demo", Key: key, Now: func() time.Time { return w.clock }}
	return w
}

// blob writes a source file of n random bytes (or zeros) and returns it.
func (w *world) blob(name string, n int, zero bool) (string, string) {
	w.t.Helper()
	data := make([]byte, n)
	if !zero {
		rand.Read(data)
	}
	p := filepath.Join(w.src, name)
	if err := os.WriteFile(p, data, 0o444); err != nil {
		w.t.Fatal(err)
	}
	return p, sha(data)
}

// release makes a release of sandbox x86_64 started at at, with a raw,
// qcow2 and vmdk export.
func (w *world) release(channel, version, asset string, at time.Time) Release {
	w.t.Helper()
	raw, rawSum := w.blob(asset+".raw", 256<<10, false)
	q, qSum := w.blob(asset+".qcow2", 64<<10, false)
	vm, vmSum := w.blob(asset+".vmdk", 32<<10, false)
	return Release{
		Channel: channel, UseCase: "sandbox", Title: "A sandbox", Arch: "x86_64", Version: version,
		Name: "sandbox-x86_64-" + version, AssetID: asset, Created: at,
		Images: map[string]string{"local-a": "img-" + asset},
		Files: []SourceFile{
			{Format: "raw", Source: Source{File: raw}, SHA256: rawSum},
			{Format: "qcow2", Source: Source{File: q}, SHA256: qSum},
			{Format: "vmdk", Source: Source{File: vm}, SHA256: vmSum},
		},
		Notes: []byte("# " + version + "\n"),
	}
}

func (w *world) publish(rels ...Release) *Report {
	w.t.Helper()
	rep, err := w.pub.Publish(context.Background(), rels, true)
	if err != nil {
		w.t.Fatalf("publish: %v", err)
	}
	return rep
}

func (w *world) catalog() *Catalog {
	w.t.Helper()
	pub := w.key.Public()
	c, err := LoadCatalog(context.Background(), DirFetcher{Dir: w.dir}, &pub)
	if err != nil {
		w.t.Fatalf("load catalog: %v", err)
	}
	return c
}

func (w *world) versions(channel string) []string {
	w.t.Helper()
	c := w.catalog()
	prods := c.Products["demo:"+channel]
	if prods == nil {
		return nil
	}
	var labels []string
	for _, v := range prods.Products["demo:sandbox:x86_64"].Versions {
		labels = append(labels, v.Label)
	}
	slices.Sort(labels)
	return labels
}

func TestPublishWritesFilesIndexAndSignatures(t *testing.T) {
	w := newWorld(t)
	rel := w.release("latest", "1.0", "kiln-20261121T093012Z-aaaaaa", t0)
	rep := w.publish(rel)
	if !rep.Changed || len(rep.Added) != 1 || len(rep.Files) != 7 {
		t.Fatalf("report: changed %v, added %v, %d files: %+v", rep.Changed, rep.Added, len(rep.Files), rep.Files)
	}
	c := w.catalog()
	v := c.Products["demo:latest"].Products["demo:sandbox:x86_64"].Versions["20261121_093012"]
	if v == nil || v.Label != "1.0" || v.AssetID != rel.AssetID {
		t.Fatalf("version %+v", v)
	}
	var ftypes []string
	for k := range v.Items {
		ftypes = append(ftypes, k)
	}
	slices.Sort(ftypes)
	want := []string{"disk-kvm.img", "lxd.tar.xz", "raw.gz", "release-notes", "sha256sums", "sha256sums.minisig", "vmdk"}
	if !slices.Equal(ftypes, want) {
		t.Fatalf("items %v, want %v", ftypes, want)
	}
	vdir := filepath.Join(w.dir, "images/sandbox/x86_64/1.0")
	// The compressed raw decompresses to the source, whose sha256 the item
	// records as uncompressed.
	raw := v.Items["raw.gz"]
	src, _ := os.ReadFile(rel.Files[0].Source.File)
	gz, _ := os.ReadFile(filepath.Join(w.dir, raw.Path))
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, src) || raw.UncompressedSHA256 != rel.Files[0].SHA256 || raw.UncompressedSize != int64(len(src)) || raw.SHA256 != sha(gz) {
		t.Fatalf("raw.gz item %+v does not describe the file", raw)
	}
	// LXD's fingerprint is sha256(metadata + disk).
	meta, _ := os.ReadFile(filepath.Join(w.dir, v.Items["lxd.tar.xz"].Path))
	disk, _ := os.ReadFile(filepath.Join(w.dir, v.Items["disk-kvm.img"].Path))
	if got := v.Items["lxd.tar.xz"].CombinedDiskKVM; got != sha(append(meta, disk...)) {
		t.Fatalf("combined fingerprint %s", got)
	}
	// People check a download with the tools of their distribution.
	sumCmd := exec.Command("sha256sum", "-c", "SHA256SUMS")
	sumCmd.Dir = vdir
	out, err := sumCmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), ": OK"); n != 5 {
		t.Fatalf("sha256sum checked %d files:\n%s", n, out)
	}
	for _, f := range []string{"streams/v1/index.json", "images/sandbox/x86_64/1.0/SHA256SUMS", c.Index.Index["demo:latest"].Path} {
		out, err := exec.Command("minisign", "-Vm", filepath.Join(w.dir, f), "-P", w.key.Public().String()).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "file:"+f) {
			t.Fatalf("minisign -V %s: %v\n%s", f, err, out)
		}
	}
	// The same publication again changes nothing, byte for byte.
	before := readTree(t, w.dir)
	w.clock = w.clock.Add(time.Hour)
	if rep := w.publish(rel); rep.Changed || len(rep.Added) != 0 || len(rep.Removed) != 0 {
		t.Fatalf("rerun: %+v", rep)
	}
	if after := readTree(t, w.dir); !maps2Equal(before, after) {
		t.Fatal("rerun changed the tree")
	}
}

// readTree reads every file under dir (through the streams symlink).
func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sub := range []string{"streams/v1", "images"} {
		filepath.WalkDir(filepath.Join(dir, sub), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				data, _ := os.ReadFile(p)
				out[p] = string(data)
			}
			return nil
		})
	}
	return out
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRetentionKeepsNewestAndReferenced(t *testing.T) {
	w := newWorld(t)
	referenced := map[string]string{}
	w.pub.Retention = Retention{Keep: 2, Referenced: func(region, id string) string { return referenced[region+"/"+id] }}
	var rels []Release
	for i, v := range []string{"1.0", "1.1", "1.2", "1.3"} {
		rels = append(rels, w.release("latest", v, "kiln-run"+v, t0.Add(time.Duration(i)*24*time.Hour)))
	}
	referenced["local-a/img-kiln-run1.0"] = "v1.0:manifests/stable.json"
	w.publish(rels[0])
	w.publish(rels[1])
	w.publish(rels[2])
	if got := w.versions("latest"); !slices.Equal(got, []string{"1.0", "1.1", "1.2"}) {
		t.Fatalf("after three: %v (1.0 is referenced by a git tag)", got)
	}
	delete(referenced, "local-a/img-kiln-run1.0")
	rep := w.publish(rels[3])
	if got := w.versions("latest"); !slices.Equal(got, []string{"1.2", "1.3"}) {
		t.Fatalf("after four: %v, want the newest two", got)
	}
	if len(rep.Retired) != 2 {
		t.Fatalf("retired %+v", rep.Retired)
	}
	// Retired files stay one publication, for readers of the old index.
	if _, err := os.Stat(filepath.Join(w.dir, "images/sandbox/x86_64/1.1/SHA256SUMS")); err != nil {
		t.Fatalf("1.1's files went with the index that dropped them: %v", err)
	}
	w.clock = w.clock.Add(time.Hour)
	w.publish(w.release("latest", "1.4", "kiln-run1.4", t0.Add(5*24*time.Hour)))
	for _, gone := range []string{"1.0", "1.1"} {
		if _, err := os.Stat(filepath.Join(w.dir, "images/sandbox/x86_64", gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("version %s still in the tree: %v", gone, err)
		}
	}
	if _, err := os.Stat(filepath.Join(w.dir, "images/sandbox/x86_64/1.2/SHA256SUMS")); err != nil {
		t.Errorf("1.2 was removed a publication early: %v", err)
	}
}

func TestPromotionReusesFiles(t *testing.T) {
	w := newWorld(t)
	rel := w.release("latest", "1.0", "kiln-a", t0)
	w.publish(rel)
	rel.Channel = "stable"
	rel.Files = nil // a promotion needs no sources: the files are there
	rep := w.publish(rel)
	if len(rep.Added) != 1 || len(rep.Files) != 0 {
		t.Fatalf("promotion: %+v", rep)
	}
	if got := w.versions("stable"); !slices.Equal(got, []string{"1.0"}) {
		t.Fatalf("stable: %v", got)
	}
}

func TestPublishRefuses(t *testing.T) {
	w := newWorld(t)
	w.publish(w.release("latest", "1.0", "kiln-a", t0))
	before := readTree(t, w.dir)

	// Another run with a published version.
	_, err := w.pub.Publish(context.Background(), []Release{w.release("latest", "1.0", "kiln-b", t0.Add(time.Hour))}, true)
	if err == nil || !strings.Contains(err.Error(), "version 1.0 of sandbox x86_64 is already published (run kiln-a") {
		t.Fatalf("conflict: %v", err)
	}
	// Another run started in the same second, with a version of its own:
	// its key would be the first run's.
	_, err = w.pub.Publish(context.Background(), []Release{w.release("latest", "1.0-2", "kiln-s", t0)}, true)
	if err == nil || !strings.Contains(err.Error(), "run kiln-s of sandbox x86_64: channel latest already indexes run kiln-a under "+Serial(t0)) {
		t.Fatalf("same second: %v", err)
	}
	// A file changed after it was indexed.
	vmdk := filepath.Join(w.dir, "images/sandbox/x86_64/1.0/sandbox-x86_64-1.0.vmdk")
	os.Remove(vmdk) // a hard link of the source: replace, do not write through
	os.WriteFile(vmdk, []byte("truncated"), 0o644)
	before[vmdk] = "truncated"
	_, err = w.pub.Publish(context.Background(), []Release{w.release("latest", "1.1", "kiln-c", t0.Add(time.Hour))}, true)
	if err == nil || !strings.Contains(err.Error(), "was changed after it was indexed; nothing was written") {
		t.Fatalf("changed file: %v", err)
	}
	// Nothing a reader sees changed: the index is the old one. (The new
	// version's files may be there, unnamed; the next publication removes
	// them.)
	after := readTree(t, w.dir)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed", p)
		}
	}
	// A directory that is not kiln's.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "precious"), []byte("x"), 0o644)
	p := &Publisher{Store: &LocalStore{Dir: other}, Project: "demo", Key: w.key}
	if _, err := p.Publish(context.Background(), []Release{w.release("latest", "2.0", "kiln-d", t0)}, true); err == nil || !strings.Contains(err.Error(), "is not empty and is not a kiln tree") {
		t.Fatalf("foreign directory: %v", err)
	}
	// Names that cannot be paths.
	bad := w.release("latest", "../x", "kiln-e", t0)
	if _, err := w.pub.Publish(context.Background(), []Release{bad}, true); err == nil || !strings.Contains(err.Error(), `version "../x" cannot be a directory`) {
		t.Fatalf("bad version: %v", err)
	}
}

// A publisher killed at any point leaves the old index in force, whole
// and verifying, and a rerun completes.
func TestCrashLeavesOldIndex(t *testing.T) {
	w := newWorld(t)
	w.publish(w.release("latest", "1.0", "kiln-a", t0))
	next := w.release("latest", "1.1", "kiln-b", t0.Add(time.Hour))
	var events []string
	w.pub.Hook = func(e string) { events = append(events, e) }
	w.publish(next)
	w.pub.Hook = nil
	if len(events) < 5 {
		t.Fatalf("only %d kill points: %v", len(events), events)
	}
	for i, e := range events {
		t.Run(e, func(t *testing.T) {
			w := newWorld(t)
			w.publish(w.release("latest", "1.0", "kiln-a", t0))
			next := w.release("latest", "1.1", "kiln-b", t0.Add(time.Hour))
			n := 0
			w.pub.Hook = func(string) {
				if n++; n == i+1 {
					panic("killed")
				}
			}
			func() {
				defer func() { recover() }()
				w.pub.Publish(context.Background(), []Release{next}, true)
			}()
			w.pub.Hook = nil
			got := w.versions("latest") // the index verifies whole
			if e != "distribute remove unindexed files" && !slices.Equal(got, []string{"1.0"}) && !slices.Equal(got, []string{"1.0", "1.1"}) {
				t.Fatalf("after a crash at %q: versions %v", e, got)
			}
			w.publish(next)
			if got := w.versions("latest"); !slices.Equal(got, []string{"1.0", "1.1"}) {
				t.Fatalf("rerun: %v", got)
			}
			// Nothing unindexed is left.
			files, _ := w.pub.Store.List(context.Background())
			for _, f := range files {
				if strings.Contains(f, "/.tmp-") {
					t.Errorf("staging file left: %s", f)
				}
			}
		})
	}
}

// A write killed half-way leaves a staging file, never a file under its
// final name; the next publication removes it.
func TestStagingFilesAreCollected(t *testing.T) {
	w := newWorld(t)
	w.publish(w.release("latest", "1.0", "kiln-a", t0))
	stale := filepath.Join(w.dir, "images/sandbox/x86_64/1.1/.tmp-0123456789ab-sandbox-x86_64-1.1.qcow2")
	os.MkdirAll(filepath.Dir(stale), 0o755)
	os.WriteFile(stale, []byte("half a disk"), 0o644)
	w.publish(w.release("latest", "1.1", "kiln-b", t0.Add(time.Hour)))
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("staging file left: %v", err)
	}
}

func TestPlanChangesNothing(t *testing.T) {
	w := newWorld(t)
	w.publish(w.release("latest", "1.0", "kiln-a", t0))
	before := readTree(t, w.dir)
	rep, err := w.pub.Publish(context.Background(), []Release{w.release("latest", "1.1", "kiln-b", t0.Add(time.Hour))}, false)
	if err != nil || rep.Applied || !rep.Changed || len(rep.Added) != 1 {
		t.Fatalf("plan: %+v %v", rep, err)
	}
	if after := readTree(t, w.dir); !maps2Equal(before, after) {
		t.Fatal("a plan changed the tree")
	}
}

func TestVerifyImage(t *testing.T) {
	w := newWorld(t)
	rel := w.release("latest", "1.0", "kiln-a", t0)
	w.publish(rel)
	ctx := context.Background()
	f := DirFetcher{Dir: w.dir}
	vmdk := filepath.Join(w.dir, "images/sandbox/x86_64/1.0/sandbox-x86_64-1.0.vmdk")
	chk, err := VerifyImage(ctx, f, w.key.Public(), vmdk)
	if err != nil || !chk.Verified || len(chk.Matches) != 1 || chk.Matches[0].FType != "vmdk" || chk.Matches[0].Channel != "latest" {
		t.Fatalf("the indexed file: %+v %v", chk, err)
	}
	// The decompressed raw disk matches by its uncompressed sha256.
	chk, err = VerifyImage(ctx, f, w.key.Public(), rel.Files[0].Source.File)
	if err != nil || !chk.Verified || chk.Matches[0].FType != "raw.gz" {
		t.Fatalf("the uncompressed raw: %+v %v", chk, err)
	}
	// A file of the same name with other bytes.
	bad := filepath.Join(t.TempDir(), "sandbox-x86_64-1.0.vmdk")
	os.WriteFile(bad, []byte("truncated"), 0o644)
	chk, err = VerifyImage(ctx, f, w.key.Public(), bad)
	if err != nil || chk.Verified || !strings.Contains(chk.Problem, "corrupt or incomplete") {
		t.Fatalf("a corrupt download: %+v %v", chk, err)
	}
	// Another key: the index does not verify, whatever the file.
	other, _ := minisign.GenerateKey(nil)
	chk, err = VerifyImage(ctx, f, other.Public(), vmdk)
	if err != nil || chk.Verified || !strings.Contains(chk.Problem, "signed with key") {
		t.Fatalf("another key: %+v %v", chk, err)
	}
	// A products file changed after signing.
	c := w.catalog()
	prod := filepath.Join(w.dir, c.Index.Index["demo:latest"].Path)
	data, _ := os.ReadFile(prod)
	os.Remove(prod)
	os.WriteFile(prod, bytes.Replace(data, []byte(`"label": "1.0"`), []byte(`"label": "6.6"`), 1), 0o644)
	chk, err = VerifyImage(ctx, f, w.key.Public(), vmdk)
	if err != nil || chk.Verified || !strings.Contains(chk.Problem, "is not what key") {
		t.Fatalf("a changed products file: %+v %v", chk, err)
	}
}
