package local

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local/debimage"
	"github.com/kiln-images/kiln/internal/config"
)

// Build makes a bootable Debian disk from the recipe with debimage and
// imports it as an available image. Its work directory is recorded as a
// build asset, tagged, before any work starts, so that a crash leaves
// nothing kiln cleanup cannot find; a rerun with the same token starts the
// work directory afresh and, since the image id derives from the token,
// never makes a second image.
func (b *Backend) Build(ctx context.Context, in cloud.BuildInput) (cloud.Image, error) {
	if _, err := b.region(in.Region); err != nil {
		return cloud.Image{}, err
	}
	work := filepath.Join(in.StateDir, "work", "build-"+in.Token)
	asset := cloud.Asset{Kind: cloud.KindBuild, ID: "build-" + in.Token, Region: in.Region, Tags: maps.Clone(in.Tags)}
	if img, err := b.Image(ctx, in.Region, tokenImageID(in.Region, in.Token)); err == nil && img.State == cloud.StateAvailable {
		// An earlier attempt finished; it may have died before removing
		// its work directory.
		return img, b.DeleteAsset(ctx, asset)
	} else if err != nil && !errors.Is(err, cloud.ErrNotFound) {
		return cloud.Image{}, err
	}
	u := in.UseCase
	if u == nil {
		return cloud.Image{}, fmt.Errorf("local build %s: no use case: %w", in.Name, cloud.ErrInvalid)
	}

	cache := b.cfg.CacheDir
	if cache == "" {
		cache = filepath.Join(in.StateDir, "cache")
	}
	if err := b.PutAsset(ctx, asset, work); err != nil {
		return cloud.Image{}, err
	}
	// A crashed attempt may have left a half-made work directory.
	if err := removeWorkDir(ctx, work); err != nil {
		return cloud.Image{}, fmt.Errorf("local build %s: clear %s: %w", in.Name, work, err)
	}
	res, err := debimage.Build(ctx, debimage.Spec{
		Arch:     in.Arch,
		Suite:    u.Base.Suite,
		Mirror:   b.cfg.Mirror,
		Packages: u.Base.Packages,
		Steps:    u.Provision,
		Vars:     in.StepVars(),
		Dir:      in.Dir,
		DiskSize: u.DiskSize.Bytes(),
		Exports:  u.Exports,
		WorkDir:  work,
		CacheDir: filepath.Join(cache, "rootfs"),
		Progress: in.Progress,
		Log:      b.log,
	})
	if err == nil {
		b.log.Info("built", "image", in.Name, "cache_key", res.CacheKey, "cache_hit", res.CacheHit, "kernel", res.Kernel)
		var img cloud.Image
		img, err = b.ImportImage(ctx, ImportInput{
			Region: in.Region, Name: in.Name, Arch: in.Arch, Token: in.Token,
			Tags: in.Tags, Disk: res.Disk, Exports: exportsBesidesRaw(res.Exports),
		})
		if err == nil {
			return img, b.DeleteAsset(ctx, asset)
		}
	}
	// Nothing half-made is kept: the error says what failed (for a
	// provisioning step, its name, exit status and output tail).
	if derr := b.DeleteAsset(context.WithoutCancel(ctx), asset); derr != nil {
		b.log.Warn("remove build work directory", "path", work, "err", derr)
	}
	return cloud.Image{}, fmt.Errorf("local build %s: %w", in.Name, err)
}

// exportsBesidesRaw drops the raw export: the raw disk is the image itself.
func exportsBesidesRaw(m map[string]string) map[string]string {
	out := maps.Clone(m)
	delete(out, "raw")
	return out
}

// removeWorkDir stops what still works in a build or test directory (the
// tools of a killed kiln), detaches what they mounted there, then removes
// it.
func removeWorkDir(ctx context.Context, dir string) error {
	if err := stopProcessesIn(ctx, dir); err != nil {
		return err
	}
	if err := unmountUnder(dir); err != nil {
		return err
	}
	return debimage.RemoveAll(ctx, dir)
}

// RemoveWorkDir removes a build or test work directory the way the local
// backend does: it stops the processes still working in it (mmdebstrap and
// its hooks after a crash) and detaches their mounts first. The aws
// backend's uploads build their disks with the local builder and remove
// their work directories with this.
func RemoveWorkDir(ctx context.Context, dir string) error { return removeWorkDir(ctx, dir) }

var _ cloud.BuildChecker = (*Backend)(nil)

// CheckBuild reports what Build would refuse before it starts (the
// architecture, the recipe and its files, the tools), and a test script
// that is not the project's, without making anything.
func (b *Backend) CheckBuild(ctx context.Context, in cloud.BuildInput, tests []string) error {
	if _, err := b.region(in.Region); err != nil {
		return err
	}
	u := in.UseCase
	if u == nil {
		return fmt.Errorf("local build %s: no use case: %w", in.Name, cloud.ErrInvalid)
	}
	for i, t := range tests {
		if _, err := config.ResolveInside(in.Dir, t); err != nil {
			return cloud.Mark(fmt.Errorf("local: tests[%d]: %w", i, err), cloud.ErrInvalid)
		}
	}
	err := debimage.Check(debimage.Spec{
		Arch: in.Arch, Suite: u.Base.Suite, Mirror: b.cfg.Mirror, Packages: u.Base.Packages,
		Steps: u.Provision, Vars: in.StepVars(), Dir: in.Dir, DiskSize: u.DiskSize.Bytes(), Exports: u.Exports,
		WorkDir: filepath.Join(in.StateDir, "work", "check"), CacheDir: filepath.Join(in.StateDir, "cache", "rootfs"), Log: b.log,
	})
	if err != nil {
		return fmt.Errorf("local build %s: %w", in.Name, err)
	}
	return nil
}
