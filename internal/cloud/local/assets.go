package local

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// assetRecord is what assets/<kind>/<id>.json holds: a build work directory
// or a running boot test, with what the backend needs to delete it.
type assetRecord struct {
	Version int               `json:"version"`
	Kind    cloud.Kind        `json:"kind"`
	ID      string            `json:"id"`
	Created time.Time         `json:"created"`
	Tags    map[string]string `json:"tags,omitempty"`
	Parent  string            `json:"parent,omitempty"`
	// Path is the file or directory the asset owns, removed with it.
	Path string `json:"path,omitempty"`
	// PID and PIDStart name the qemu process of an instance; the start
	// time tells it from a later process that reuses the pid.
	PID      int    `json:"pid,omitempty"`
	PIDStart uint64 `json:"pid_start,omitempty"`
}

// Asset states ListAssets reports for builds and instances.
const (
	StatePresent = "present" // a build whose directory exists
	StateMissing = "missing" // a build whose directory is gone
	StateRunning = "running" // an instance whose qemu process runs
	StateStopped = "stopped" // an instance whose process has exited
)

// PutAsset records an asset of kind build or instance that owns path (a
// work directory, a log file; empty for nothing), tagged with a.Tags, so
// that ListAssets finds it and DeleteAsset removes path with the record.
// Putting an asset again replaces its record.
func (b *Backend) PutAsset(ctx context.Context, a cloud.Asset, path string) error {
	if err := b.putAsset(ctx, a, path, 0); err != nil {
		return fmt.Errorf("local: put %s asset %s in region %s: %w", show(string(a.Kind)), show(a.ID), show(a.Region), err)
	}
	return nil
}

// PutInstance records a running boot test: the qemu process pid and the
// directory it owns. DeleteAsset stops the process if it is still that
// qemu process, then removes dir.
func (b *Backend) PutInstance(ctx context.Context, a cloud.Asset, dir string, pid int) error {
	if err := b.putAsset(ctx, a, dir, pid); err != nil {
		return fmt.Errorf("local: put instance %s in region %s: %w", show(a.ID), show(a.Region), err)
	}
	return nil
}

func (b *Backend) putAsset(ctx context.Context, a cloud.Asset, path string, pid int) error {
	r, err := b.assetRegion(a)
	if err := errors.Join(err, checkTags(a.Tags)); err != nil {
		return err
	}
	if path != "" {
		if err := b.checkOwnedPath(path); err != nil {
			return err
		}
	}
	rec := &assetRecord{
		Version: recordVersion, Kind: a.Kind, ID: a.ID, Created: a.Created,
		Tags: maps.Clone(a.Tags), Parent: a.Parent, Path: path,
	}
	if rec.Created.IsZero() {
		rec.Created = b.now().UTC().Round(0)
	}
	if pid != 0 {
		if a.Kind != cloud.KindInstance {
			return invalidf("pid %d: only instances have processes", pid)
		}
		p, err := readProc(pid)
		if err != nil {
			return fmt.Errorf("pid %d: %w", pid, err)
		}
		rec.PID, rec.PIDStart = pid, p.start
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return writeAtomic(r.tmpDir(), r.assetPath(a.Kind, a.ID), append(data, '\n'), time.Time{})
}

// assetRegion checks that a is a build or instance with a valid id, as
// every operation on asset records does first, and returns its region.
func (b *Backend) assetRegion(a cloud.Asset) (*region, error) {
	r, err := b.region(a.Region)
	if err != nil {
		return nil, err
	}
	if a.Kind != cloud.KindBuild && a.Kind != cloud.KindInstance {
		return nil, invalidf("kind %q: the local backend records assets of kind %s and %s (images have records of their own)", a.Kind, cloud.KindBuild, cloud.KindInstance)
	}
	if err := checkAssetID(a.ID); err != nil {
		return nil, err
	}
	return r, nil
}

// removeAssetRecord removes the record of an asset, under the region's
// lock.
func (r *region) removeAssetRecord(ctx context.Context, kind cloud.Kind, id string) error {
	unlock, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return removeDurably(r.assetPath(kind, id))
}

// RemoveAsset forgets a build or instance asset without touching the files
// it owns or its process: for when its owner has cleaned up itself.
// Removing an absent asset succeeds.
func (b *Backend) RemoveAsset(ctx context.Context, a cloud.Asset) error {
	if err := b.removeAsset(ctx, a); err != nil {
		return fmt.Errorf("local: remove %s asset %s in region %s: %w", show(string(a.Kind)), show(a.ID), show(a.Region), err)
	}
	return nil
}

func (b *Backend) removeAsset(ctx context.Context, a cloud.Asset) error {
	r, err := b.assetRegion(a)
	if err != nil {
		return err
	}
	return r.removeAssetRecord(ctx, a.Kind, a.ID)
}

// ListAssets returns the images, builds and instances in region whose tags
// match f. Images have no child assets here: their blobs are storage the
// store collects itself. State is the image state, StatePresent or
// StateMissing for builds, StateRunning or StateStopped for instances.
func (b *Backend) ListAssets(ctx context.Context, region string, f cloud.Filter) ([]cloud.Asset, error) {
	assets, err := b.listAssets(ctx, region, f)
	if err != nil {
		return nil, fmt.Errorf("local: list assets in region %s: %w", show(region), err)
	}
	return assets, nil
}

func (b *Backend) listAssets(ctx context.Context, region string, f cloud.Filter) ([]cloud.Asset, error) {
	r, err := b.region(region)
	if err != nil {
		return nil, err
	}
	want := func(id string, tags map[string]string) bool {
		return (f.IDs == nil || slices.Contains(f.IDs, id)) && cloud.Match(tags, f.Tags)
	}
	recs, err := r.scanRecords(ctx, nil)
	if err != nil {
		return nil, err
	}
	var out []cloud.Asset
	for _, rec := range recs {
		if want(rec.ID, rec.Tags) {
			out = append(out, cloud.Asset{
				Kind: cloud.KindImage, ID: rec.ID, Region: r.name, State: string(rec.State),
				Created: rec.Created, Tags: maps.Clone(rec.Tags), Exports: r.exports(rec),
			})
		}
	}
	for _, kind := range []cloud.Kind{cloud.KindBuild, cloud.KindInstance} {
		recs, err := r.assetRecords(kind)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if want(rec.ID, rec.Tags) {
				out = append(out, cloud.Asset{
					Kind: kind, ID: rec.ID, Region: r.name, State: assetState(rec),
					Created: rec.Created, Tags: maps.Clone(rec.Tags), Parent: rec.Parent,
				})
			}
		}
	}
	slices.SortFunc(out, func(a, b cloud.Asset) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func assetState(rec *assetRecord) string {
	if rec.Kind == cloud.KindInstance {
		if rec.PID > 0 {
			if ours, _ := ourProcess(rec.PID, rec.PIDStart); ours {
				return StateRunning
			}
		}
		return StateStopped
	}
	if rec.Path != "" && !fileExists(rec.Path) {
		return StateMissing
	}
	return StatePresent
}

// DeleteAsset deletes an image (DeleteImage), a build (its directory, then
// its record) or an instance (its qemu process if still running, its
// files, then its record). Deleting an absent asset succeeds.
func (b *Backend) DeleteAsset(ctx context.Context, a cloud.Asset) error {
	if a.Kind == cloud.KindImage {
		return b.DeleteImage(ctx, a.Region, a.ID)
	}
	if err := b.deleteAsset(ctx, a); err != nil {
		return fmt.Errorf("local: delete %s asset %s in region %s: %w", show(string(a.Kind)), show(a.ID), show(a.Region), err)
	}
	return nil
}

func (b *Backend) deleteAsset(ctx context.Context, a cloud.Asset) error {
	r, err := b.assetRegion(a)
	if err != nil {
		return err
	}
	rec, err := r.readAsset(a.Kind, a.ID)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Process and files first, record last: after a crash the record is
	// still there for the next cleanup to finish the job.
	if rec.PID > 0 {
		if err := stopProcess(ctx, rec.PID, rec.PIDStart); err != nil {
			return err
		}
	}
	if rec.Path != "" {
		if err := b.checkOwnedPath(rec.Path); err != nil {
			return fmt.Errorf("record %s: %w", r.assetPath(a.Kind, a.ID), err)
		}
		if err := removeWorkDir(ctx, rec.Path); err != nil {
			return err
		}
	}
	return r.removeAssetRecord(ctx, a.Kind, a.ID)
}

// readAsset reads one asset record; an absent one is fs.ErrNotExist.
func (r *region) readAsset(kind cloud.Kind, id string) (*assetRecord, error) {
	path := r.assetPath(kind, id)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rec assetRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("asset record %s: %w", path, err)
	}
	if rec.Version != recordVersion || rec.Kind != kind || rec.ID != id {
		return nil, fmt.Errorf("asset record %s: version %d, kind %q, id %q: want version %d, kind %q, id %q",
			path, rec.Version, rec.Kind, rec.ID, recordVersion, kind, id)
	}
	return &rec, nil
}

// assetRecords reads every record of kind in the region.
func (r *region) assetRecords(kind cloud.Kind) ([]*assetRecord, error) {
	entries, err := os.ReadDir(r.assetKindDir(kind))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*assetRecord
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || checkAssetID(id) != nil {
			continue
		}
		rec, err := r.readAsset(kind, id)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the directory read
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// checkOwnedPath refuses paths an asset must not own, which a bad record
// could otherwise make DeleteAsset remove: relative or unclean paths, the
// filesystem root or a directory right below it, and the store itself.
func (b *Backend) checkOwnedPath(path string) error {
	switch {
	case !filepath.IsAbs(path):
		return invalidf("path %q: not absolute", path)
	case filepath.Clean(path) != path:
		return invalidf("path %q: not clean (want %q)", path, filepath.Clean(path))
	case strings.Count(path, "/") < 2:
		return invalidf("path %q: too close to the filesystem root to be owned by an asset", path)
	case strings.ContainsFunc(path, func(c rune) bool { return c < 0x20 || c == 0x7f }):
		return invalidf("path %q: control characters are not allowed", path)
	case b.overlapsStore(path):
		return invalidf("path %q: overlaps the image store", path)
	}
	return nil
}
