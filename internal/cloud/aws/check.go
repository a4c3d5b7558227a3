package aws

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

var _ cloud.BuildChecker = (*Backend)(nil)

// DiskChecker is implemented by DiskBuilders that can tell, without
// building, whether BuildDisk(in) would be refused (the recipe's files,
// the tools it needs).
type DiskChecker interface {
	CheckDisk(ctx context.Context, in DiskInput) error
}

// preflightURL stands in for a presigned URL when the bootstrap of a staged
// bundle is made to be measured: real ones are of this order of length.
const preflightURL = "https://preflight.s3.us-east-1.amazonaws.com/" + stagingPrefix +
	"run-00000000000000000000000000/0000000000000000000000000000000000000000000000000000000000000000.tgz" +
	"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAAAAAAAAAAAAAAAAA%2F20260101%2Fus-east-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20260101T000000Z&X-Amz-Expires=1800&X-Amz-SignedHeaders=host" +
	"&X-Amz-Signature=0000000000000000000000000000000000000000000000000000000000000000"

// CheckBuild makes, without sending anything, the bundles of the build and
// of the boot test and the user data that starts them, and refuses what the
// build would: a recipe file that is not the project's or is missing, a
// bundle too big for user data (or holding a secret) without a bucket to
// stage it in, an architecture or name EC2 does not take; with build method
// upload, a disk that is not there or a recipe the local builder refuses.
// The candidate's name is not known yet; a placeholder of the same rule
// stands in when in.Name is empty.
func (b *Backend) CheckBuild(ctx context.Context, in cloud.BuildInput, tests []string) error {
	if in.Name == "" {
		in.Name = "kiln-preflight-name"
	}
	if in.Token == "" {
		in.Token = "preflight"
	}
	if err := checkBuildInput(in); err != nil {
		return err
	}
	if _, err := b.clients.region(in.Region); err != nil {
		return err
	}
	u := in.UseCase
	if u.Build.Method == config.BuildUpload {
		if err := b.checkUpload(ctx, in); err != nil {
			return cloud.Mark(fmt.Errorf("build: use_cases.%s.%w", u.Name, err), cloud.ErrInvalid)
		}
	} else {
		bd, err := provisionBundle(in.Dir, in.StateDir, u.Provision, in.StepVars())
		if err != nil {
			return cloud.Mark(fmt.Errorf("build: use_cases.%s.%w", u.Name, err), cloud.ErrInvalid)
		}
		if err := b.checkBootstrap(bd, buildMarker); err != nil {
			return cloud.Mark(fmt.Errorf("build: use_cases.%s.provision: %w", u.Name, err), cloud.ErrInvalid)
		}
	}
	if len(tests) > 0 {
		bd, err := testBundle(in.Dir, tests)
		if err != nil {
			return cloud.Mark(fmt.Errorf("boot test: use_cases.%s.%w", u.Name, err), cloud.ErrInvalid)
		}
		if err := b.checkBootstrap(bd, testMarker); err != nil {
			return cloud.Mark(fmt.Errorf("boot test: use_cases.%s.tests: %w", u.Name, err), cloud.ErrInvalid)
		}
	}
	return nil
}

// checkBootstrap refuses a bundle that could not reach its instance: inline
// (no bucket), one holding a secret or over EC2's user data limit; staged,
// a bootstrap over the limit (it never is, but it is what EC2 checks).
func (b *Backend) checkBootstrap(bd bundle, marker string) error {
	url := preflightURL
	if b.cfg.Bucket == "" {
		if bd.secret {
			return errors.New("the bundle holds a secret variable, which must not travel in user data: set backend.aws.bucket")
		}
		url = ""
	}
	_, err := bootstrap(bd, url, marker)
	return err
}

// checkUpload refuses an upload build whose disk cannot be had: a given
// disk that is missing (it is the image itself, so it may be anywhere), or
// a recipe the disk builder refuses.
func (b *Backend) checkUpload(ctx context.Context, in cloud.BuildInput) error {
	u := in.UseCase
	if u.Build.Disk != "" {
		fi, err := os.Stat(resolve(in.Dir, u.Build.Disk))
		if err != nil {
			return fmt.Errorf("build.disk %q: %w", u.Build.Disk, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("build.disk %q: not a regular file", u.Build.Disk)
		}
		return nil
	}
	if b.opts.disks == nil {
		return errors.New("build: method upload needs the local image builder, which this kiln was not given")
	}
	if b.opts.stateDir == "" {
		return errors.New("build: method upload needs a state directory for its work")
	}
	if c, ok := b.opts.disks.(DiskChecker); ok {
		if err := c.CheckDisk(ctx, DiskInput{Arch: in.Arch, UseCase: u, Dir: in.Dir, Vars: in.StepVars(),
			WorkDir: uploadWork(b.opts.stateDir, "check")}); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
	}
	return nil
}
