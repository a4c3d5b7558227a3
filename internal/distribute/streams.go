package distribute

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Simplestreams format names and the data type of image downloads.
const (
	FormatIndex    = "index:1.0"
	FormatProducts = "products:1.0"
	DataType       = "image-downloads"
	IndexPath      = "streams/v1/index.json"
	// SigSuffix is appended to a file's path for its signature.
	SigSuffix = ".minisig"
)

// timeLayout is simplestreams' "updated" format (RFC 2822, as Python's
// email.utils.formatdate writes it).
const timeLayout = "Mon, 02 Jan 2006 15:04:05 -0000"

// serialLayout is a version's key: the run's start time in UTC. LXD reads
// its first eight digits as the image's date.
const serialLayout = "20060102_150405"

// Index is streams/v1/index.json.
type Index struct {
	Format  string                 `json:"format"`
	Updated string                 `json:"updated,omitempty"`
	Index   map[string]*IndexEntry `json:"index"`
}

// IndexEntry names one products file.
type IndexEntry struct {
	DataType string   `json:"datatype"`
	Format   string   `json:"format"`
	Path     string   `json:"path"`
	Products []string `json:"products"`
	Updated  string   `json:"updated,omitempty"`
	// SHA256 and Size of the products file (kiln's; other clients ignore
	// them): the index's signature covers the products through them.
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Products is one channel's products file.
type Products struct {
	ContentID string              `json:"content_id"`
	DataType  string              `json:"datatype"`
	Format    string              `json:"format"`
	Updated   string              `json:"updated,omitempty"`
	Products  map[string]*Product `json:"products"`
}

// Product is one use case and architecture of a project.
type Product struct {
	// Aliases, comma-separated, are the names LXD lists the newest
	// version under ("<use case>/<channel>").
	Aliases      string              `json:"aliases"`
	Arch         string              `json:"arch"`
	OS           string              `json:"os"`      // the project
	Release      string              `json:"release"` // the use case
	ReleaseTitle string              `json:"release_title"`
	Versions     map[string]*Version `json:"versions"`
}

// Version is one released version of a product.
type Version struct {
	Items   map[string]*Item `json:"items"`
	Label   string           `json:"label"`   // kiln's version
	PubName string           `json:"pubname"` // the image's release name
	// What kiln records about the release behind the version.
	AssetID   string            `json:"kiln_asset_id"`
	Published string            `json:"kiln_published"` // RFC 3339, UTC
	Images    map[string]string `json:"kiln_images"`    // region -> image id
}

// Item is one file of a version.
type Item struct {
	FType  string `json:"ftype"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// For compressed files, the sha256 and size of what they decompress to.
	UncompressedSHA256 string `json:"uncompressed_sha256,omitempty"`
	UncompressedSize   int64  `json:"uncompressed_size,omitempty"`
	// On LXD's metadata item: sha256 of it followed by the qcow2 disk, LXD's
	// fingerprint of the VM image.
	CombinedDiskKVM string `json:"combined_disk-kvm-img_sha256,omitempty"`
}

// encodeJSON is the canonical encoding of index and products files: keys
// sorted, two-space indent, trailing newline, no HTML escaping.
func encodeJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only maps, strings and numbers: cannot fail
	}
	return b.Bytes()
}

// maxStreamsFile bounds what is read as an index or products file.
const maxStreamsFile = 64 << 20

// decodeStrict decodes one JSON document into v, refusing unknown fields
// and trailing data.
func decodeStrict(name string, data []byte, v any) error {
	if len(data) > maxStreamsFile {
		return fmt.Errorf("%s: %d bytes, more than the %d an index file may have", name, len(data), maxStreamsFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%s: data after the JSON document", name)
	}
	return nil
}

var (
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	serialRE = regexp.MustCompile(`^\d{8}_\d{6}$`)
	// segmentRE is what a path segment kiln writes may hold.
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
)

// checkPath checks a path an index names: relative, clean, made of safe
// segments, under streams/v1/ or images/. Paths from an index are used to
// find files, so nothing else may pass.
func checkPath(p string) error {
	if p == "" || path.Clean(p) != p || strings.HasPrefix(p, "/") {
		return fmt.Errorf("path %q is not a clean relative path", p)
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if !segmentRE.MatchString(s) || strings.Contains(s, "..") {
			return fmt.Errorf("path %q: segment %q is not allowed (letters, digits, . _ + -, not starting with a dot)", p, s)
		}
	}
	switch {
	case len(segs) == 3 && segs[0] == "streams" && segs[1] == "v1":
	case len(segs) == 5 && segs[0] == "images":
	default:
		return fmt.Errorf("path %q is neither streams/v1/FILE nor images/USE_CASE/ARCH/VERSION/FILE", p)
	}
	return nil
}

// DecodeIndex parses and checks an index file.
func DecodeIndex(data []byte) (*Index, error) {
	var ix Index
	if err := decodeStrict(IndexPath, data, &ix); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) (*Index, error) {
		return nil, fmt.Errorf("%s: %s", IndexPath, fmt.Sprintf(format, args...))
	}
	if ix.Format != FormatIndex {
		return bad("format %q, want %q", ix.Format, FormatIndex)
	}
	paths := map[string]string{}
	for _, key := range slices.Sorted(maps.Keys(ix.Index)) {
		e := ix.Index[key]
		switch {
		case e == nil:
			return bad("index %q is null", key)
		case e.DataType != DataType:
			return bad("index %q: datatype %q, want %q", key, e.DataType, DataType)
		case e.Format != FormatProducts:
			return bad("index %q: format %q, want %q", key, e.Format, FormatProducts)
		case !sha256RE.MatchString(e.SHA256) || e.Size <= 0:
			return bad("index %q: sha256 %q and size %d: want 64 hex digits and a positive size", key, e.SHA256, e.Size)
		}
		if err := checkPath(e.Path); err != nil || !strings.HasPrefix(e.Path, "streams/v1/") {
			return bad("index %q: path %q is not a file under streams/v1/", key, e.Path)
		}
		if other, dup := paths[e.Path]; dup {
			return bad("index %q and %q name the same products file %s", other, key, e.Path)
		}
		paths[e.Path] = key
	}
	return &ix, nil
}

// DecodeProducts parses and checks a products file read from name.
func DecodeProducts(name string, data []byte) (*Products, error) {
	var p Products
	if err := decodeStrict(name, data, &p); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) (*Products, error) {
		return nil, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	if p.Format != FormatProducts || p.DataType != DataType {
		return bad("format %q and datatype %q, want %q and %q", p.Format, p.DataType, FormatProducts, DataType)
	}
	for _, pk := range slices.Sorted(maps.Keys(p.Products)) {
		prod := p.Products[pk]
		if prod == nil {
			return bad("product %q is null", pk)
		}
		for _, vk := range slices.Sorted(maps.Keys(prod.Versions)) {
			v := prod.Versions[vk]
			if v == nil {
				return bad("product %q version %q is null", pk, vk)
			}
			if !serialRE.MatchString(vk) {
				return bad("product %q: version key %q, want YYYYMMDD_HHMMSS", pk, vk)
			}
			if _, err := time.Parse(time.RFC3339, v.Published); err != nil {
				return bad("product %q version %s: kiln_published %q is not an RFC 3339 time", pk, vk, v.Published)
			}
			for _, ik := range slices.Sorted(maps.Keys(v.Items)) {
				it := v.Items[ik]
				if it == nil {
					return bad("product %q version %s item %q is null", pk, vk, ik)
				}
				if err := checkPath(it.Path); err != nil || !strings.HasPrefix(it.Path, "images/") {
					return bad("product %q version %s item %q: path %q is not a file under images/", pk, vk, ik, it.Path)
				}
				if !sha256RE.MatchString(it.SHA256) || it.Size < 0 {
					return bad("product %q version %s item %q: sha256 %q and size %d: want 64 hex digits and a size", pk, vk, ik, it.SHA256, it.Size)
				}
				for field, d := range map[string]string{"uncompressed_sha256": it.UncompressedSHA256, "combined_disk-kvm-img_sha256": it.CombinedDiskKVM} {
					if d != "" && !sha256RE.MatchString(d) {
						return bad("product %q version %s item %q: %s %q is not 64 hex digits", pk, vk, ik, field, d)
					}
				}
			}
		}
	}
	return &p, nil
}

// Files returns every item of the products with the product and version
// it belongs to, in a stable order.
func (p *Products) Files() []Located {
	var out []Located
	for _, pk := range slices.Sorted(maps.Keys(p.Products)) {
		prod := p.Products[pk]
		for _, vk := range slices.Sorted(maps.Keys(prod.Versions)) {
			v := prod.Versions[vk]
			for _, ik := range slices.Sorted(maps.Keys(v.Items)) {
				out = append(out, Located{Product: pk, Version: vk, Key: ik, Item: v.Items[ik], Label: v.Label})
			}
		}
	}
	return out
}

// Located is an item with where it is in a products file.
type Located struct {
	Product string `json:"product"`
	Version string `json:"version"`
	Label   string `json:"label"`
	Key     string `json:"item"`
	Item    *Item  `json:"-"`
}
