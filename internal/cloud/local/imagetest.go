package local

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local/qemuboot"
	"github.com/kiln-images/kiln/internal/config"
)

// TestImage boots the image's raw disk under qemu on a copy-on-write
// overlay (the image is never modified), with the recipe's tests handed to
// the guest agent, and reads the result from the serial console. The qemu
// process is recorded as an instance asset while it runs, so that cleanup
// can stop it if kiln dies (qemu also dies with kiln, by PDEATHSIG).
func (b *Backend) TestImage(ctx context.Context, in cloud.TestInput) (cloud.TestResult, error) {
	disk, err := b.DiskFile(ctx, in.Region, in.ImageID, "raw")
	if err != nil {
		return cloud.TestResult{}, err
	}
	tests := make([]string, len(in.Tests))
	for i, t := range in.Tests {
		if in.Dir != "" {
			if _, err := config.ResolveInside(in.Dir, t); err != nil {
				return cloud.TestResult{}, cloud.Mark(fmt.Errorf("local: tests[%d]: %w", i, err), cloud.ErrInvalid)
			}
		}
		tests[i] = filepath.Join(in.Dir, t)
	}
	work := filepath.Join(in.StateDir, "work", "test-"+in.Token)
	asset := cloud.Asset{Kind: cloud.KindInstance, ID: "vm-" + in.Token, Region: in.Region, Tags: maps.Clone(in.Tags)}
	if err := b.PutAsset(ctx, asset, work); err != nil {
		return cloud.TestResult{}, err
	}
	defer func() {
		if err := b.DeleteAsset(context.WithoutCancel(ctx), asset); err != nil {
			b.log.Warn("remove boot test instance", "instance", asset.ID, "err", err)
		}
	}()
	timeout := in.Timeout
	if timeout <= 0 {
		timeout = b.cfg.BootTimeout.Std()
	}
	var done func(error)
	if in.Progress != nil {
		done = in.Progress.Step("boot " + in.ImageID)
	}
	res, err := qemuboot.Run(ctx, qemuboot.Spec{
		Disk:    disk,
		Tests:   tests,
		WorkDir: work,
		LogPath: in.LogPath,
		Timeout: timeout,
		Accel:   b.cfg.Accel,
		Log:     b.log,
		OnStart: func(pid int) {
			if err := b.PutInstance(ctx, asset, work, pid); err != nil {
				b.log.Warn("record boot test instance", "pid", pid, "err", err)
			}
		},
	})
	if done != nil {
		done(err)
	}
	if err != nil {
		return cloud.TestResult{}, fmt.Errorf("boot test of %s in %s: %w", in.ImageID, in.Region, err)
	}
	b.log.Info("boot test", "image", in.ImageID, "passed", res.Passed, "accel", res.Accel, "took", res.Duration)
	return cloud.TestResult{Passed: res.Passed, Reason: res.Reason, Duration: res.Duration, LogPath: in.LogPath}, nil
}
