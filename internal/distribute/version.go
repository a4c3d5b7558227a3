package distribute

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// version places the files of one release in the tree, reads each back
// and returns the version that names them. With apply false it places
// nothing and returns the version without checksums.
func (p *Publisher) version(ctx context.Context, cur *state, rel Release, apply bool) (*Version, []FileRef, error) {
	v := &Version{
		Items: map[string]*Item{}, Label: rel.Version, PubName: rel.Name,
		AssetID: rel.AssetID, Published: p.now().Format(time.RFC3339), Images: maps.Clone(rel.Images),
	}
	// A promotion: the run's files are in the tree for another channel.
	if other := p.sameRun(cur, rel); other != nil {
		v.Items = other.Items
		return v, nil, nil
	}
	if len(rel.Files) == 0 {
		return nil, nil, fmt.Errorf("release %s of %s %s has no exported files to publish: list the formats under use_cases.%s.exports", rel.AssetID, rel.UseCase, rel.Arch, rel.UseCase)
	}
	base := rel.UseCase + "-" + rel.Arch + "-" + rel.Version
	type placed struct {
		item   *Item
		src    Source
		expect string // uncompressed sha256 the source promises
	}
	var todo []placed
	var qcow2 *Item
	for _, f := range rel.Files {
		compress := f.Source.Object == ""
		suffix, ftype, gz, err := formatSpec(f.Format, compress)
		if err != nil {
			return nil, nil, fmt.Errorf("release %s: %w", rel.AssetID, err)
		}
		it := &Item{FType: ftype, Path: versionPath(rel, base+suffix)}
		src := f.Source
		src.Gzip = gz
		todo = append(todo, placed{item: it, src: src, expect: f.SHA256})
		if ftype == ftypeDiskKVM {
			qcow2 = it
		}
	}
	var meta []byte
	if qcow2 != nil {
		var err error
		if meta, err = lxdMetadata(p.Project, rel.UseCase, rel.Arch, rel.Version, Serial(rel.Created), rel.Created); err != nil {
			return nil, nil, err
		}
		todo = append(todo, placed{item: &Item{FType: ftypeLXD, Path: versionPath(rel, base+lxdMetaSuffix)}, src: Source{Bytes: meta}})
	}
	if rel.Notes != nil {
		todo = append(todo, placed{item: &Item{FType: ftypeNotes, Path: versionPath(rel, notesFile)}, src: Source{Bytes: rel.Notes}})
	}
	if !apply {
		var refs []FileRef
		for _, t := range todo {
			v.Items[t.item.FType] = t.item
			refs = append(refs, FileRef{Path: t.item.Path, FType: t.item.FType})
		}
		return v, refs, nil
	}

	var refs []FileRef
	sums := map[string]string{}
	for _, t := range todo {
		p.hook("distribute put " + t.item.Path)
		if err := p.Store.Put(ctx, t.item.Path, t.src); err != nil {
			return nil, nil, fmt.Errorf("place %s in %s: %w", t.item.Path, p.Store.Name(), err)
		}
		var combined hash.Hash
		if t.item == qcow2 {
			combined = sha256.New()
			combined.Write(meta)
		}
		got, err := p.readBack(ctx, t.item.Path, t.src.Gzip, combined)
		if err != nil {
			return nil, nil, err
		}
		want := t.expect
		if want == "" && t.src.Bytes != nil {
			want = sha(t.src.Bytes)
		}
		content := got.sha256
		if t.src.Gzip {
			content = got.rawSHA256
			t.item.UncompressedSHA256, t.item.UncompressedSize = got.rawSHA256, got.rawSize
		}
		if want != "" && content != want {
			return nil, nil, fmt.Errorf("%s in %s: read back, its content has sha256 %s, the source has %s; the index was not written",
				t.item.Path, p.Store.Name(), content, want)
		}
		t.item.SHA256, t.item.Size = got.sha256, got.size
		if combined != nil {
			// LXD's fingerprint of the VM image: metadata, then disk.
			for _, o := range todo {
				if o.item.FType == ftypeLXD {
					o.item.CombinedDiskKVM = hex.EncodeToString(combined.Sum(nil))
				}
			}
		}
		v.Items[t.item.FType] = t.item
		sums[path.Base(t.item.Path)] = t.item.SHA256
		refs = append(refs, FileRef{Path: t.item.Path, FType: t.item.FType, Size: t.item.Size, SHA256: t.item.SHA256})
	}

	// SHA256SUMS and its signature, for people who download with curl and
	// check with sha256sum and minisign.
	sumsData := EncodeSums(sums)
	sig, err := p.sign(versionPath(rel, SumsFile), sumsData, rel.Created)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range []struct {
		ftype, name string
		data        []byte
	}{{ftypeSums, SumsFile, sumsData}, {ftypeSumsSig, SumsFile + SigSuffix, sig}} {
		it := &Item{FType: f.ftype, Path: versionPath(rel, f.name)}
		if err := p.Store.Put(ctx, it.Path, Source{Bytes: f.data}); err != nil {
			return nil, nil, fmt.Errorf("place %s in %s: %w", it.Path, p.Store.Name(), err)
		}
		got, err := p.readBack(ctx, it.Path, false, nil)
		if err != nil {
			return nil, nil, err
		}
		if got.sha256 != sha(f.data) {
			return nil, nil, fmt.Errorf("%s in %s: read back, it is not what was written", it.Path, p.Store.Name())
		}
		it.SHA256, it.Size = got.sha256, got.size
		v.Items[it.FType] = it
		refs = append(refs, FileRef{Path: it.Path, FType: it.FType, Size: it.Size, SHA256: it.SHA256})
	}
	slices.SortFunc(refs, func(a, b FileRef) int { return strings.Compare(a.Path, b.Path) })
	return v, refs, nil
}

// digests is what reading a file of the tree back found.
type digests struct {
	sha256    string
	size      int64
	rawSHA256 string // of the decompressed content, for gzip files
	rawSize   int64
}

// readBack reads a file of the tree and hashes it (and, for gzip files,
// what it decompresses to); extra, when set, also receives the content.
func (p *Publisher) readBack(ctx context.Context, file string, gz bool, extra hash.Hash) (digests, error) {
	r, err := p.Store.Open(ctx, file)
	if err != nil {
		return digests{}, fmt.Errorf("read back %s from %s: %w", file, p.Store.Name(), err)
	}
	defer r.Close()
	h := sha256.New()
	var w io.Writer = h
	if extra != nil {
		w = io.MultiWriter(h, extra)
	}
	var d digests
	if !gz {
		n, err := io.CopyBuffer(w, ctxReader{ctx, r}, make([]byte, 1<<20))
		if err != nil {
			return d, fmt.Errorf("read back %s from %s: %w", file, p.Store.Name(), err)
		}
		d.sha256, d.size = hex.EncodeToString(h.Sum(nil)), n
		return d, nil
	}
	// One pass: the compressed bytes go to h while gzip reads them.
	cr := &countingReader{r: io.TeeReader(ctxReader{ctx, r}, w)}
	zr, err := gzip.NewReader(cr)
	if err != nil {
		return d, fmt.Errorf("read back %s from %s: not gzip: %w", file, p.Store.Name(), err)
	}
	zr.Multistream(false)
	raw := sha256.New()
	n, err := io.CopyBuffer(raw, zr, make([]byte, 1<<20))
	if err != nil {
		return d, fmt.Errorf("read back %s from %s: %w", file, p.Store.Name(), err)
	}
	// Whatever follows the gzip stream counts towards the file's sha256.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return d, err
	}
	d.sha256, d.size = hex.EncodeToString(h.Sum(nil)), cr.n
	d.rawSHA256, d.rawSize = hex.EncodeToString(raw.Sum(nil)), n
	return d, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
