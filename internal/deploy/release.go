package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/manifest"
)

// definition returns deployment name's settings and its record (nil when
// it has none yet). A personal deployment's settings are its template's.
func (d *Deployer) definition(name string) (*config.Deployment, *record.Record, error) {
	rec, ok, err := record.Load(d.Config.Dir, name)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		rec = nil
	}
	if def, ok := d.Config.Deployments[name]; ok {
		if def.Template {
			return nil, nil, cloud.Mark(fmt.Errorf("deployment %q is a template; make a personal deployment from it: kiln deploy --new NAME --from %s", name, name), cloud.ErrInvalid)
		}
		return def, rec, nil
	}
	if rec != nil && rec.Template != "" {
		t, ok := d.Config.Deployments[rec.Template]
		if !ok || !t.Template {
			return nil, nil, cloud.Mark(fmt.Errorf("deployment %s was made from template %q, which kiln.yaml no longer defines", name, rec.Template), cloud.ErrInvalid)
		}
		return t.Instantiate(name), rec, nil
	}
	_, err = d.Config.Deployment(name)
	return nil, nil, cloud.Mark(err, cloud.ErrInvalid)
}

// newPersonal makes the record of a personal deployment name from
// template from, expiring after the template's expire_after.
func (d *Deployer) newPersonal(name, from string) (*config.Deployment, *record.Record, error) {
	bad := func(format string, args ...any) (*config.Deployment, *record.Record, error) {
		return nil, nil, cloud.Mark(fmt.Errorf(format, args...), cloud.ErrInvalid)
	}
	if msg := d.Config.CheckDeploymentName(name); msg != "" {
		return bad("--new: %s", msg)
	}
	if _, ok := d.Config.Deployments[name]; ok {
		return bad("--new %s: kiln.yaml defines a deployment of that name", name)
	}
	if _, ok, err := record.Load(d.Config.Dir, name); err != nil || ok {
		if err != nil {
			return nil, nil, err
		}
		return bad("--new %s: deployment %s exists already (%s); deploy it by name", name, name, record.Path(d.Config.Dir, name))
	}
	t, ok := d.Config.Deployments[from]
	if !ok || !t.Template {
		var names []string
		for _, n := range d.Config.DeploymentNames() {
			if d.Config.Deployments[n].Template {
				names = append(names, n)
			}
		}
		return bad("--from %s: not a template deployment of kiln.yaml; templates: %s", from, strings.Join(names, ", "))
	}
	def := t.Instantiate(name)
	rec := record.New(name, d.Config.Project, def.Region, def.Account)
	rec.State = record.StateDeploying
	rec.Template, rec.Owner = from, d.who()
	rec.Expires = d.now().Add(t.ExpireAfter.Std())
	return def, rec, nil
}

// resolveRelease reads the release a deployment's image settings name:
// the channel manifest's entry (every region of it), or the pinned image.
func (d *Deployer) resolveRelease(ctx context.Context, def *config.Deployment) (*record.Release, error) {
	u, err := d.Config.UseCase(def.Image.UseCase)
	if err != nil {
		return nil, err
	}
	rel := &record.Release{UseCase: u.Name, Arch: def.Image.Arch, Images: map[string]string{}}
	if def.Image.ID != "" {
		rel.Pinned = true
		rel.Images[def.Region] = def.Image.ID
	} else {
		path, err := d.Config.ManifestPath(def.Image.Channel)
		if err != nil {
			return nil, err
		}
		m, err := channel.Load(d.Config, def.Image.Channel)
		if err != nil {
			return nil, err
		}
		key := u.ManifestKey(def.Image.Arch)
		entries := m[key]
		if _, ok := entries[def.Region]; !ok {
			return nil, cloud.Mark(fmt.Errorf("deployment %s: channel %s has no image of %s in %s (%s); release one first: kiln release %s --channel %s",
				def.Name, def.Image.Channel, key, def.Region, path, u.Name, def.Image.Channel), cloud.ErrNotFound)
		}
		for region, e := range entries {
			rel.Images[region] = e.ID
		}
		rel.Channel = def.Image.Channel
		rel.Manifest, _ = filepath.Rel(d.Config.Dir, path)
		if revs, err := manifest.History(ctx, d.Config.Dir, "./"+filepath.ToSlash(rel.Manifest), 1); err == nil && len(revs) > 0 {
			rel.ManifestCommit = revs[0].Commit
		}
	}
	img, err := d.Images.Image(ctx, def.Region, rel.Images[def.Region])
	if err != nil {
		return nil, fmt.Errorf("deployment %s: image %s in %s: %w", def.Name, rel.Images[def.Region], def.Region, err)
	}
	rel.ImageName = img.Name
	rel.Version = img.Tags[cloud.TagVersion]
	if rel.Version == "" {
		rel.Version = img.Name
	}
	rel.ID = releaseID(rel)
	return rel, nil
}

// releaseID names a release by its version and its images, so that the
// same images have the same id in every deployment.
func releaseID(rel *record.Release) string {
	var b strings.Builder
	for _, r := range slices.Sorted(maps.Keys(rel.Images)) {
		fmt.Fprintf(&b, "%s=%s\n", r, rel.Images[r])
	}
	sum := sha256.Sum256([]byte(b.String()))
	v := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._+-", r) {
			return r
		}
		return '_'
	}, rel.Version)
	if len(v) > 100 {
		v = v[:100]
	}
	return v + "-" + hex.EncodeToString(sum[:4])
}

// copyRelease returns a copy of rel for deploying to def: the images are
// the same, what the deployment adds (parameters, templates) its own.
func copyRelease(rel *record.Release) *record.Release {
	c := *rel
	c.Images = maps.Clone(rel.Images)
	c.Templates, c.Parameters, c.Secrets = map[string]string{}, map[string]string{}, map[string]string{}
	return &c
}

// image returns the release's image in region, read from the backend.
func (d *Deployer) image(ctx context.Context, rel *record.Release, region string) (Image, cloud.Image, error) {
	id, ok := rel.Images[region]
	if !ok {
		return Image{}, cloud.Image{}, cloud.Mark(fmt.Errorf("release %s has no image in %s (it has %s)", rel.ID, region,
			strings.Join(slices.Sorted(maps.Keys(rel.Images)), ", ")), cloud.ErrNotFound)
	}
	img, err := d.Images.Image(ctx, region, id)
	if err != nil {
		return Image{}, cloud.Image{}, fmt.Errorf("release %s: image %s in %s: %w", rel.ID, id, region, err)
	}
	return Image{ID: id, Name: img.Name, Region: region, Arch: rel.Arch, Version: rel.Version}, img, nil
}

// templateDigests returns the sha256 of each stack unit's template.
func (d *Deployer) templateDigests(def *config.Deployment) (map[string]string, error) {
	out := map[string]string{}
	for name, u := range def.Units {
		if u.Stack == nil {
			continue
		}
		data, err := os.ReadFile(d.Config.Resolve(u.Stack.Template))
		if err != nil {
			return nil, fmt.Errorf("deployment %s unit %s: template: %w", def.Name, name, err)
		}
		sum := sha256.Sum256(data)
		out[name] = "sha256:" + hex.EncodeToString(sum[:])
	}
	return out, nil
}

// expired reports whether a personal deployment's time is up.
func (d *Deployer) expired(rec *record.Record) bool {
	return rec != nil && !rec.Expires.IsZero() && !d.now().Before(rec.Expires)
}

var errNoRecord = errors.New("has no record")

// mustRecord returns the deployment's record, which an operation on a
// deployed deployment needs.
func (d *Deployer) mustRecord(name string) (*config.Deployment, *record.Record, error) {
	def, rec, err := d.definition(name)
	if err != nil {
		return nil, nil, err
	}
	if rec == nil || rec.Release == nil {
		return nil, nil, cloud.Mark(fmt.Errorf("deployment %s %w with a release (%s); deploy it first: kiln deploy %s --apply",
			name, errNoRecord, record.Path(d.Config.Dir, name), name), cloud.ErrNotFound)
	}
	return def, rec, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
