package aws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
)

// The work directories of builds with method upload (the disk the local
// builder made, waiting to be uploaded) are assets of kind build in the
// build region, as the local backend's build directories are: a crash
// leaves nothing kiln cleanup cannot find. They live in this machine's
// state directory, so only this machine lists them.

// workRecord is what a work directory says about itself.
type workRecord struct {
	Region string            `json:"region"`
	Tags   map[string]string `json:"tags"`
}

// workRecordFile holds a work directory's record.
const workRecordFile = "kiln-asset.json"

// writeWorkTags records whose a work directory is.
func writeWorkTags(work string, in cloud.BuildInput) error {
	data, err := json.Marshal(workRecord{Region: in.Region, Tags: withTags(in.Tags, map[string]string{cloud.TagPhase: cloud.PhaseBuild, cloud.TagToken: in.Token})})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(work, workRecordFile), data, 0o644)
}

// workDirs adds the upload work directories of the region whose tags
// match want.
func (inv *inventory) workDirs(want map[string]string) error {
	dir := inv.b.opts.stateDir
	if dir == "" {
		return nil
	}
	entries, err := os.ReadDir(filepath.Join(dir, "work"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list work directories: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "upload-") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, "work", e.Name(), workRecordFile))
		if err != nil {
			continue // not one of ours, or not far enough to say
		}
		var rec workRecord
		if json.Unmarshal(data, &rec) != nil || rec.Region != inv.c.region || !cloud.Match(rec.Tags, want) {
			continue
		}
		info, _ := e.Info()
		a := cloud.Asset{Kind: cloud.KindBuild, ID: e.Name(), Tags: rec.Tags}
		if info != nil {
			a.Created = info.ModTime()
		}
		inv.add(a)
	}
	return nil
}

// deleteWorkDir removes an upload work directory.
func (b *Backend) deleteWorkDir(ctx context.Context, id string) error {
	if b.opts.stateDir == "" || !strings.HasPrefix(id, "upload-") || strings.ContainsAny(id, "/\\") {
		return cloud.Mark(fmt.Errorf("build asset %q: not an upload work directory of this machine", id), cloud.ErrInvalid)
	}
	dir := filepath.Join(b.opts.stateDir, "work", id)
	if b.opts.disks != nil {
		return b.opts.disks.RemoveWork(ctx, dir)
	}
	return os.RemoveAll(dir)
}
