package localunit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
)

// What a teardown may keep of a local unit, and where it keeps it.
//
// A unit's directory goes with Destroy. Its data worth keeping — a VM's
// disk (the overlay, type "overlay") and a process unit's data directory
// (type "data-dir") — can first be moved out of it by Keep, into
// <state>/retained/<deployment>/<unit>-<type>-<made>, next to a
// retained.json that carries the unit's tags (and kiln:retain=true), so
// that Retained finds it, kiln destroy --purge-retained removes it, and
// nothing is ever left that no listing shows.

// Resource types of the parts a teardown may keep.
const (
	PartOverlay = "overlay"
	PartDataDir = "data-dir"
)

// dataDir is a process unit's data directory, inside its unit directory:
// KILN_DATA_DIR.
const dataDir = "data"

const (
	retainedDir  = "retained"
	retainedFile = "retained.json"
	overlayFile  = "overlay.qcow2"
)

// kept is retained.json.
type kept struct {
	Type       string            `json:"type"`
	Project    string            `json:"project"`
	Deployment string            `json:"deployment"`
	Unit       string            `json:"unit"`
	Region     string            `json:"region"`
	Tags       map[string]string `json:"tags"`
	// From is where the part was, Payload its name in this directory.
	From    string    `json:"from"`
	Payload string    `json:"payload"`
	Kept    time.Time `json:"kept"`
}

// Parts lists what of the unit a teardown may keep: a VM's disk, a
// process unit's data directory (when it holds anything). Each has the unit's
// tags and, as Parent, the unit's id (deployment/unit).
func (k *kind) Parts(ctx context.Context, u deploy.Unit) ([]deploy.Resource, error) {
	dir := k.dir(u)
	m, ok, err := readMeta(dir)
	if err != nil || !ok {
		return nil, err
	}
	typ, name := PartOverlay, overlayFile
	if m.Kind == "process" {
		typ, name = PartDataDir, dataDir
	}
	if _, err := os.Stat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	if typ == PartDataDir {
		// An empty data directory holds nothing worth keeping.
		if entries, err := os.ReadDir(filepath.Join(dir, name)); err != nil || len(entries) == 0 {
			return nil, err
		}
	}
	return []deploy.Resource{{
		Type: typ, ID: filepath.Join(dir, name), Region: m.Region, Tags: maps.Clone(m.Tags),
		Parent: m.Deployment + "/" + m.Unit, Created: m.Created,
	}}, nil
}

// Keep moves part (one of Parts) out of the unit, so that Destroy leaves
// it, and returns it where it is now. A VM's disk is copied into a
// standalone qcow2 file (an overlay needs its image, which may be pruned
// once the deployment is gone); a data directory is renamed. The unit
// must be stopped. Keep again after a crash finishes the job, or returns
// what the first call kept.
func (k *kind) Keep(ctx context.Context, u deploy.Unit, part deploy.Resource) (deploy.Resource, error) {
	unlock, err := k.lock(ctx, u)
	if err != nil {
		return deploy.Resource{}, err
	}
	defer unlock()
	dir := k.dir(u)
	m, ok, err := readMeta(dir)
	if err != nil {
		return deploy.Resource{}, err
	}
	if !ok {
		return deploy.Resource{}, cloud.Mark(fmt.Errorf("keep %s of %s/%s: the unit does not exist", part.Type, u.Deployment, u.Name), cloud.ErrNotFound)
	}
	if pid, err := supervisorPID(dir); err != nil || pid != 0 {
		if err == nil {
			err = cloud.Mark(fmt.Errorf("keep %s of %s/%s: the unit runs (supervisor %d); stop it first", part.Type, u.Deployment, u.Name, pid), cloud.ErrNotYet)
		}
		return deploy.Resource{}, err
	}
	var payload string
	switch part.Type {
	case PartOverlay:
		payload = overlayFile
	case PartDataDir:
		payload = dataDir
	default:
		return deploy.Resource{}, cloud.Mark(fmt.Errorf("keep %s of %s/%s: a %s unit keeps only its %s", part.Type, u.Deployment, u.Name, m.Kind, PartOverlay+" or "+PartDataDir), cloud.ErrInvalid)
	}
	dst := filepath.Join(k.opts.StateDir, retainedDir, m.Deployment, fmt.Sprintf("%s-%s-%s", m.Unit, part.Type, m.Created.UTC().Format("20060102T150405Z")))
	src := filepath.Join(dir, payload)
	tags := maps.Clone(m.Tags)
	tags[cloud.TagRetain] = "true"
	rec := kept{Type: part.Type, Project: m.Project, Deployment: m.Deployment, Unit: m.Unit, Region: m.Region,
		Tags: tags, From: src, Payload: payload, Kept: time.Now().UTC()}
	res := deploy.Resource{Type: part.Type, ID: filepath.Join(dst, payload), Region: m.Region, Tags: tags, Retain: true, Created: m.Created}
	if _, err := os.Stat(res.ID); err == nil {
		return res, nil // kept before
	}
	if _, err := os.Stat(src); err != nil {
		return deploy.Resource{}, fmt.Errorf("keep %s of %s/%s: %w", part.Type, u.Deployment, u.Name, err)
	}
	// The record first, tagged: whatever a crash leaves in dst is found.
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return deploy.Resource{}, err
	}
	if err := writeJSON(filepath.Join(dst, retainedFile), rec); err != nil {
		return deploy.Resource{}, err
	}
	switch part.Type {
	case PartOverlay:
		tmp := res.ID + ".tmp"
		out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-O", "qcow2", src, tmp).CombinedOutput()
		if err != nil {
			os.Remove(tmp)
			return deploy.Resource{}, fmt.Errorf("keep the disk of %s/%s: qemu-img convert: %v: %s", u.Deployment, u.Name, err, strings.TrimSpace(string(out)))
		}
		if err := os.Rename(tmp, res.ID); err != nil {
			return deploy.Resource{}, err
		}
	case PartDataDir:
		if err := os.Rename(src, res.ID); err != nil {
			return deploy.Resource{}, fmt.Errorf("keep the data directory of %s/%s: %w", u.Deployment, u.Name, err)
		}
	}
	k.opts.Log.Info("kept", "type", part.Type, "unit", u.Deployment+"/"+u.Name, "at", res.ID)
	return res, nil
}

// Retained lists and removes what teardowns kept of local units, under
// <state>/retained.
type Retained struct {
	StateDir string
}

// Find returns the kept parts in region whose tags match tags.
func (r Retained) Find(ctx context.Context, region string, tags map[string]string) ([]deploy.Resource, error) {
	root := filepath.Join(r.StateDir, retainedDir)
	deps, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []deploy.Resource
	for _, d := range deps {
		entries, err := os.ReadDir(filepath.Join(root, d.Name()))
		if err != nil {
			continue // not a directory, or gone meanwhile
		}
		for _, e := range entries {
			dir := filepath.Join(root, d.Name(), e.Name())
			var k kept
			if err := readJSON(filepath.Join(dir, retainedFile), &k); errors.Is(err, fs.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, err
			}
			if k.Region != region || !cloud.Match(k.Tags, tags) {
				continue
			}
			out = append(out, deploy.Resource{Type: k.Type, ID: filepath.Join(dir, k.Payload), Region: k.Region,
				Tags: k.Tags, Retain: true, Created: k.Kept})
		}
	}
	return out, nil
}

// Empty does nothing: kept parts hold nothing to empty first.
func (r Retained) Empty(ctx context.Context, res deploy.Resource) error { return nil }

// Delete removes a kept part (its directory under <state>/retained).
// Removing an absent one succeeds.
func (r Retained) Delete(ctx context.Context, res deploy.Resource) error {
	root := filepath.Join(r.StateDir, retainedDir) + string(filepath.Separator)
	dir := filepath.Dir(res.ID)
	if !strings.HasPrefix(dir, root) || strings.Count(strings.TrimPrefix(dir, root), string(filepath.Separator)) != 1 {
		return cloud.Mark(fmt.Errorf("delete %s %s: not a kept part under %s", res.Type, res.ID, root), cloud.ErrInvalid)
	}
	// The record goes last, so that a crash leaves nothing unlisted.
	if err := os.RemoveAll(res.ID); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	os.Remove(filepath.Dir(dir)) // the deployment's directory, once empty
	return nil
}
