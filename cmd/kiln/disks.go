package main

import (
	"context"
	"log/slog"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/cloud/aws"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/cloud/local/debimage"
	"github.com/kiln-images/kiln/internal/config"
)

// localDisks builds the disks of aws builds with method upload with the
// local backend's builder: the same mmdebstrap, provisioning and disk
// layout, with the project's mirror and base cache (backend.local).
type localDisks struct {
	mirror, cache string
	log           *slog.Logger
}

func newLocalDisks(cfg *config.Config, log *slog.Logger) localDisks {
	return localDisks{mirror: cfg.Backend.Local.Mirror, cache: cfg.Backend.Local.CacheDir, log: log}
}

func (d localDisks) BuildDisk(ctx context.Context, in aws.DiskInput) (string, error) {
	u := in.UseCase
	res, err := debimage.Build(ctx, debimage.Spec{
		Arch:     in.Arch,
		Suite:    u.Base.Suite,
		Mirror:   d.mirror,
		Packages: u.Base.Packages,
		Steps:    u.Provision,
		Vars:     in.Vars,
		Dir:      in.Dir,
		DiskSize: u.DiskSize.Bytes(),
		WorkDir:  in.WorkDir,
		CacheDir: filepath.Join(d.cache, "rootfs"),
		Progress: in.Progress,
		Log:      d.log,
	})
	if err != nil {
		return "", err
	}
	return res.Disk, nil
}

func (d localDisks) RemoveWork(ctx context.Context, dir string) error {
	return local.RemoveWorkDir(ctx, dir)
}

var _ aws.DiskChecker = localDisks{}

// CheckDisk is what BuildDisk would refuse before it starts: the recipe's
// files and the tools the local builder needs.
func (d localDisks) CheckDisk(ctx context.Context, in aws.DiskInput) error {
	u := in.UseCase
	return debimage.Check(debimage.Spec{
		Arch:     in.Arch,
		Suite:    u.Base.Suite,
		Mirror:   d.mirror,
		Packages: u.Base.Packages,
		Steps:    u.Provision,
		Vars:     in.Vars,
		Dir:      in.Dir,
		DiskSize: u.DiskSize.Bytes(),
		WorkDir:  in.WorkDir,
		CacheDir: filepath.Join(d.cache, "rootfs"),
		Log:      d.log,
	})
}
