// Package localfixture is the local backend with its builder and boot
// tester replaced by fast stand-ins: Build imports a small random disk
// instead of bootstrapping Debian, TestImage passes without booting. The
// store, copies, publishing, tags and cleanup are the real local backend's.
//
// It is for tests of what happens around a build — phases on other
// machines, CI pipelines, merge requests — which would otherwise wait
// minutes for mmdebstrap and qemu; the real builder and boot test have
// tests of their own (local/debimage, local/qemuboot). Only tests and the
// kiln_fixture_builder build of kiln (for the CI pipeline tests) use it.
package localfixture

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
)

// Backend is the local backend with Build and TestImage replaced.
type Backend struct {
	*local.Backend
	// Disk, when set, is the disk every Build imports (a real bootable
	// one, for tests that boot what they release); "": random bytes.
	Disk string
}

// Build imports a disk of 64 KiB of random bytes as the candidate, with
// the build's name, token and tags, and a small random file per export
// format, as the real builder's image would have.
func (b *Backend) Build(ctx context.Context, in cloud.BuildInput) (cloud.Image, error) {
	if err := os.MkdirAll(in.StateDir, 0o755); err != nil {
		return cloud.Image{}, err
	}
	disk := filepath.Join(in.StateDir, "disk-"+in.Token)
	data := make([]byte, 64<<10)
	rand.Read(data)
	if b.Disk != "" {
		var err error
		if data, err = os.ReadFile(b.Disk); err != nil {
			return cloud.Image{}, err
		}
	}
	if err := os.WriteFile(disk, data, 0o644); err != nil {
		return cloud.Image{}, err
	}
	// Exports are files of their own, as the real builder's qemu-img
	// conversions are.
	exports := map[string]string{}
	for _, format := range in.UseCase.Exports {
		path := disk + "." + format
		rand.Read(data)
		if err := os.WriteFile(path, data[:1000+len(format)], 0o644); err != nil {
			return cloud.Image{}, err
		}
		exports[format] = path
	}
	return b.ImportImage(ctx, local.ImportInput{Region: in.Region, Name: in.Name, Arch: in.Arch, Token: in.Token, Tags: in.Tags, Disk: disk, Exports: exports})
}

// CheckBuild checks a build as the local backend does, except for the
// architecture: the stand-in builds any.
func (b *Backend) CheckBuild(ctx context.Context, in cloud.BuildInput, tests []string) error {
	in.Arch = "x86_64"
	return b.Backend.CheckBuild(ctx, in, tests)
}

// TestImage passes every image, keeping a console log at in.LogPath as
// the real testers do.
func (b *Backend) TestImage(ctx context.Context, in cloud.TestInput) (cloud.TestResult, error) {
	if in.LogPath != "" {
		log := "Booting " + in.ImageID + " in " + in.Region + "\r\nWelcome to Debian GNU/Linux 12 (bookworm)!\r\nKILN-TEST-RESULT: PASS\r\n"
		if err := os.WriteFile(in.LogPath, []byte(log), 0o644); err != nil {
			return cloud.TestResult{}, err
		}
	}
	return cloud.TestResult{Passed: true, LogPath: in.LogPath}, nil
}
