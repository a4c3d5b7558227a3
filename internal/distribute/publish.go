package distribute

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/minisign"
)

// Publisher writes releases and the signed index into a tree.
type Publisher struct {
	Store     Store
	Project   string
	Key       minisign.PrivateKey
	Retention Retention
	Now       func() time.Time // nil: time.Now
	Log       *slog.Logger     // nil: discard
	Hook      func(event string)
}

// Report says what a publication did, or with Applied false, would do.
type Report struct {
	Tree    string       `json:"tree"`
	Applied bool         `json:"applied"`
	Changed bool         `json:"changed"` // the index changed
	Index   string       `json:"index"`
	Added   []VersionRef `json:"added"`
	Kept    []VersionRef `json:"kept"`
	Retired []VersionRef `json:"retired"`
	Files   []FileRef    `json:"files"`   // files of the added versions
	Removed []string     `json:"removed"` // files no index names any more
	// Invalidation is the CDN invalidation of the index paths (aws).
	Invalidation string `json:"invalidation,omitempty"`
}

// VersionRef names one version in one channel.
type VersionRef struct {
	Channel string `json:"channel"`
	Product string `json:"product"`
	Serial  string `json:"serial"`
	Version string `json:"version"`
	AssetID string `json:"asset_id"`
	Reason  string `json:"reason,omitempty"` // why it is kept or retired
}

// FileRef is one file in the tree.
type FileRef struct {
	Path   string `json:"path"`
	FType  string `json:"ftype"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *Publisher) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (p *Publisher) hook(event string) {
	if p.Hook != nil {
		p.Hook(event)
	}
}

// state is the parsed streams files of a tree: one products file per
// channel.
type state struct {
	index    *Index
	products map[string]*Products // channel -> products
	files    map[string][]byte    // the raw streams files
}

// channelKey is the index key of a channel's products.
func (p *Publisher) channelKey(channel string) string { return p.Project + ":" + channel }

// load reads and checks the tree's current streams files.
func (p *Publisher) load(ctx context.Context) (*state, error) {
	files, err := p.Store.Streams(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the index of %s: %w", p.Store.Name(), err)
	}
	st := &state{products: map[string]*Products{}, files: files}
	if files == nil {
		return st, nil
	}
	data, ok := files[IndexPath]
	if !ok {
		return nil, fmt.Errorf("%s: streams files without %s", p.Store.Name(), IndexPath)
	}
	if st.index, err = DecodeIndex(data); err != nil {
		return nil, fmt.Errorf("%s: %w", p.Store.Name(), err)
	}
	prefix := p.Project + ":"
	for key, e := range st.index.Index {
		channel, ok := strings.CutPrefix(key, prefix)
		if !ok {
			return nil, fmt.Errorf("%s: index entry %q is not of project %s; one tree holds one project", p.Store.Name(), key, p.Project)
		}
		raw, ok := files[e.Path]
		if !ok {
			return nil, fmt.Errorf("%s: the index names %s, which is not among the streams files", p.Store.Name(), e.Path)
		}
		if sha(raw) != e.SHA256 {
			return nil, fmt.Errorf("%s: %s does not have the sha256 the index gives", p.Store.Name(), e.Path)
		}
		prods, err := DecodeProducts(e.Path, raw)
		if err != nil {
			return nil, err
		}
		st.products[channel] = prods
	}
	return st, nil
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Publish adds releases to the tree (their files, then the index) and
// applies the retention. With apply false it only works out what it would
// do and changes nothing.
func (p *Publisher) Publish(ctx context.Context, rels []Release, apply bool) (*Report, error) {
	rep := &Report{Tree: p.Store.Name(), Applied: apply, Index: IndexPath,
		Added: []VersionRef{}, Kept: []VersionRef{}, Retired: []VersionRef{}, Files: []FileRef{}, Removed: []string{}}
	for i := range rels {
		if err := rels[i].check(); err != nil {
			return rep, err
		}
	}
	if apply {
		unlock, err := p.Store.Lock(ctx)
		if err != nil {
			return rep, err
		}
		defer unlock()
	}
	cur, err := p.load(ctx)
	if err != nil {
		return rep, err
	}
	next := map[string]*Products{}
	for ch, prods := range cur.products {
		next[ch] = cloneProducts(prods)
	}

	for _, rel := range rels {
		if err := p.checkConflict(cur, rel); err != nil {
			return rep, err
		}
		pk := ProductKey(p.Project, rel.UseCase, rel.Arch)
		serial := Serial(rel.Created)
		prods := next[rel.Channel]
		if prods == nil {
			prods = &Products{ContentID: p.channelKey(rel.Channel), DataType: DataType, Format: FormatProducts, Products: map[string]*Product{}}
			next[rel.Channel] = prods
		}
		prod := prods.Products[pk]
		if prod == nil {
			prod = &Product{Arch: rel.Arch, OS: p.Project, Release: rel.UseCase, Versions: map[string]*Version{}}
			prods.Products[pk] = prod
		}
		prod.ReleaseTitle = cmp.Or(rel.Title, rel.UseCase)
		prod.Aliases = rel.UseCase + "/" + rel.Channel
		ref := VersionRef{Channel: rel.Channel, Product: pk, Serial: serial, Version: rel.Version, AssetID: rel.AssetID}
		if old := prod.Versions[serial]; old != nil && old.AssetID != rel.AssetID {
			// The key is the start time to the second, as LXD reads it:
			// a second run of that second would take the first one's
			// place in the index.
			return rep, fmt.Errorf("run %s of %s %s: channel %s already indexes run %s under %s, the second both runs started in; version keys are start times to the second (LXD reads them as dates), so release it again",
				rel.AssetID, rel.UseCase, rel.Arch, rel.Channel, old.AssetID, serial)
		}
		if old := prod.Versions[serial]; old != nil {
			v := *old
			v.Images = maps.Clone(rel.Images)
			prod.Versions[serial] = &v
			rep.Kept = append(rep.Kept, withReason(ref, "already indexed"))
			continue
		}
		v, files, err := p.version(ctx, cur, rel, apply)
		if err != nil {
			return rep, err
		}
		prod.Versions[serial] = v
		rep.Added = append(rep.Added, ref)
		rep.Files = append(rep.Files, files...)
	}

	retired := p.Retention.apply(next, p.now())
	rep.Retired = append(rep.Retired, retired...)
	for ch := range next {
		if len(next[ch].Products) == 0 {
			delete(next, ch)
		}
	}
	if err := p.checkPresent(ctx, cur, next, rep); err != nil {
		return rep, err
	}
	files, err := p.streamsFiles(next)
	if err != nil {
		return rep, err
	}
	rep.Changed = !sameStreams(cur.files, files)
	if apply && rep.Changed {
		p.hook("distribute commit index")
		if err := p.Store.Commit(ctx, files); err != nil {
			return rep, fmt.Errorf("write the index of %s: %w", p.Store.Name(), err)
		}
		p.hook("distribute committed index")
		p.log().Info("index written", "tree", p.Store.Name(), "added", len(rep.Added), "retired", len(rep.Retired))
	}
	if apply && rep.Changed {
		if inv, ok := p.Store.(Invalidator); ok {
			paths := []string{"/" + IndexPath, "/" + IndexPath + SigSuffix}
			if rep.Invalidation, err = inv.Invalidate(ctx, paths, sha(files[IndexPath])); err != nil {
				return rep, fmt.Errorf("the index is written; invalidating its CDN copies failed (rerun to retry): %w", err)
			}
		}
	}
	removed, err := p.collect(ctx, cur, next, apply)
	rep.Removed = append(rep.Removed, removed...)
	return rep, err
}

func withReason(r VersionRef, reason string) VersionRef {
	r.Reason = reason
	return r
}

// checkConflict refuses a release whose version directory already holds
// another run's files: published versions never change.
func (p *Publisher) checkConflict(cur *state, rel Release) error {
	pk := ProductKey(p.Project, rel.UseCase, rel.Arch)
	for _, ch := range slices.Sorted(maps.Keys(cur.products)) {
		prod := cur.products[ch].Products[pk]
		if prod == nil {
			continue
		}
		for _, v := range prod.Versions {
			if v.Label == rel.Version && v.AssetID != rel.AssetID {
				return fmt.Errorf("version %s of %s %s is already published (run %s, channel %s); published versions do not change: release run %s with another version",
					rel.Version, rel.UseCase, rel.Arch, v.AssetID, ch, rel.AssetID)
			}
		}
	}
	return nil
}

// sameRun returns an indexed version of the same run in any channel
// (a promotion), whose files are in the tree already.
func (p *Publisher) sameRun(cur *state, rel Release) *Version {
	pk := ProductKey(p.Project, rel.UseCase, rel.Arch)
	for _, ch := range slices.Sorted(maps.Keys(cur.products)) {
		if prod := cur.products[ch].Products[pk]; prod != nil {
			if v := prod.Versions[Serial(rel.Created)]; v != nil && v.AssetID == rel.AssetID {
				return v
			}
		}
	}
	return nil
}

// checkPresent checks that every file the next index names and no new
// version placed is still in the tree with its size: versions carried
// over were read back when they were added.
func (p *Publisher) checkPresent(ctx context.Context, cur *state, next map[string]*Products, rep *Report) error {
	placed := map[string]bool{}
	for _, f := range rep.Files {
		placed[f.Path] = true
	}
	seen := map[string]bool{}
	for _, ch := range slices.Sorted(maps.Keys(next)) {
		for _, l := range next[ch].Files() {
			if placed[l.Item.Path] || seen[l.Item.Path] {
				continue
			}
			seen[l.Item.Path] = true
			size, err := p.Store.Size(ctx, l.Item.Path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("%s: %s (version %s of %s in channel %s) is missing from the tree; nothing was written. Run `kiln index --apply` to place it again",
					p.Store.Name(), l.Item.Path, l.Label, l.Product, ch)
			case err != nil:
				return err
			case size != l.Item.Size:
				return fmt.Errorf("%s: %s is %d bytes, the index says %d: it was changed after it was indexed; nothing was written",
					p.Store.Name(), l.Item.Path, size, l.Item.Size)
			}
		}
	}
	return nil
}

// streamsFiles encodes and signs the products files and the index.
func (p *Publisher) streamsFiles(next map[string]*Products) (map[string][]byte, error) {
	files := map[string][]byte{}
	ix := &Index{Format: FormatIndex, Index: map[string]*IndexEntry{}}
	var newest time.Time
	for _, ch := range slices.Sorted(maps.Keys(next)) {
		prods := next[ch]
		updated := prods.newest()
		prods.Updated = formatUpdated(updated)
		data := encodeJSON(prods)
		name := fmt.Sprintf("streams/v1/%s-%s.json", ch, sha(data)[:12])
		files[name] = data
		sig, err := p.sign(name, data, updated)
		if err != nil {
			return nil, err
		}
		files[name+SigSuffix] = sig
		ix.Index[p.channelKey(ch)] = &IndexEntry{
			DataType: DataType, Format: FormatProducts, Path: name,
			Products: slices.Sorted(maps.Keys(prods.Products)),
			Updated:  prods.Updated, SHA256: sha(data), Size: int64(len(data)),
		}
		if updated.After(newest) {
			newest = updated
		}
	}
	ix.Updated = formatUpdated(newest)
	data := encodeJSON(ix)
	files[IndexPath] = data
	sig, err := p.sign(IndexPath, data, newest)
	if err != nil {
		return nil, err
	}
	files[IndexPath+SigSuffix] = sig
	return files, nil
}

func formatUpdated(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// sign signs a file of the tree. The trusted comment names the file and
// the project, and its time is the content's newest publication, so the
// same content always gets the same signature.
func (p *Publisher) sign(name string, data []byte, at time.Time) ([]byte, error) {
	tc := fmt.Sprintf("timestamp:%d\tfile:%s\tproject:%s", at.Unix(), name, p.Project)
	return minisign.Sign(p.Key, bytes.NewReader(data), tc)
}

// newest is the latest publication time of any version.
func (prods *Products) newest() time.Time {
	var t time.Time
	for _, prod := range prods.Products {
		for _, v := range prod.Versions {
			if pt, err := time.Parse(time.RFC3339, v.Published); err == nil && pt.After(t) {
				t = pt
			}
		}
	}
	return t
}

// sameStreams reports whether two sets of streams files are the same.
func sameStreams(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// collect removes the files under images/ that neither the new index nor
// the one it replaced names (so a reader who fetched the old index just
// before the switch can still download), and staging files interrupted
// writes left. It runs after the commit, under the lock.
func (p *Publisher) collect(ctx context.Context, cur *state, next map[string]*Products, apply bool) ([]string, error) {
	named := map[string]bool{}
	for _, set := range []map[string]*Products{cur.products, next} {
		for _, prods := range set {
			for _, l := range prods.Files() {
				named[l.Item.Path] = true
			}
		}
	}
	all, err := p.Store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", p.Store.Name(), err)
	}
	var gone []string
	for _, f := range all {
		if !named[f] {
			gone = append(gone, f)
		}
	}
	if !apply || len(gone) == 0 {
		return gone, nil
	}
	p.hook("distribute remove unindexed files")
	if err := p.Store.Remove(ctx, gone); err != nil {
		return gone, fmt.Errorf("remove files no index names from %s: %w", p.Store.Name(), err)
	}
	return gone, nil
}

func cloneProducts(p *Products) *Products {
	c := *p
	c.Products = map[string]*Product{}
	for k, prod := range p.Products {
		cp := *prod
		cp.Versions = maps.Clone(prod.Versions)
		c.Products[k] = &cp
	}
	return &c
}

// versionPath is a file of a version.
func versionPath(rel Release, file string) string {
	return path.Join(VersionDir(rel.UseCase, rel.Arch, rel.Version), file)
}
