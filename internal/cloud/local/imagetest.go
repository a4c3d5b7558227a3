package local

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local/qemuboot"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/redact"
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
	// The console goes to the work directory first and reaches
	// in.LogPath with the secrets masked: the log kiln keeps never holds
	// one, even for a moment.
	console := in.LogPath
	var secrets redact.Secrets
	secrets.Add(in.Secrets...)
	if !secrets.Empty() && in.LogPath != "" {
		console = filepath.Join(work, "console.log")
		defer func() {
			if err := keepMasked(&secrets, console, in.LogPath); err != nil {
				b.log.Warn("keep the boot test's console log", "path", in.LogPath, "err", err)
			}
		}()
	}
	res, err := qemuboot.Run(ctx, qemuboot.Spec{
		Disk:    disk,
		Tests:   tests,
		WorkDir: work,
		LogPath: console,
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

// keepMasked copies the console log at from to to with the secrets masked.
func keepMasked(s *redact.Secrets, from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return redact.WriteFile(to, []byte(s.String(string(data))), 0o644)
}
