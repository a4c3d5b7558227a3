package aws

import (
	"context"
	"fmt"

	"github.com/kiln-images/kiln/internal/cloud"
)

var _ cloud.BuildChecker = (*Backend)(nil)

// CheckBuild makes, without sending anything, the user data of the build
// and of the boot test and refuses what EC2 would: a recipe file that is
// not the project's or is missing, user data over 16 KiB even gzipped, an
// architecture or name EC2 does not take. The candidate's name is not known
// yet; a placeholder of the same rule stands in when in.Name is empty.
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
	script, err := provisionScript(in.Dir, in.UseCase.Provision)
	if err != nil {
		return cloud.Mark(fmt.Errorf("build: use_cases.%s.%w", in.UseCase.Name, err), cloud.ErrInvalid)
	}
	if _, err := encodeUserData(script); err != nil {
		return cloud.Mark(fmt.Errorf("build: use_cases.%s.provision: %w", in.UseCase.Name, err), cloud.ErrInvalid)
	}
	if len(tests) > 0 {
		script, err := testScript(in.Dir, tests)
		if err != nil {
			return cloud.Mark(fmt.Errorf("boot test: use_cases.%s.%w", in.UseCase.Name, err), cloud.ErrInvalid)
		}
		if _, err := encodeUserData(script); err != nil {
			return cloud.Mark(fmt.Errorf("boot test: use_cases.%s.tests: %w", in.UseCase.Name, err), cloud.ErrInvalid)
		}
	}
	return nil
}
