package aws

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// refusingDisks is a DiskBuilder whose check refuses every recipe.
type refusingDisks struct{}

func (refusingDisks) BuildDisk(context.Context, DiskInput) (string, error) {
	return "", errors.New("not built")
}
func (refusingDisks) RemoveWork(context.Context, string) error { return nil }
func (refusingDisks) CheckDisk(context.Context, DiskInput) error {
	return errors.New("mmdebstrap is not installed")
}

// TestCheckBuild: the release preflight makes the bundles a build and its
// boot test would send and refuses, before anything exists, what could not
// reach the instance or what the upload could not have.
func TestCheckBuild(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "setup.sh"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(dir, "tests/boot.sh"), "#!/bin/sh\n", 0o755)
	noise := make([]byte, 40<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	write(t, filepath.Join(dir, "blob"), string(noise), 0o644)
	write(t, filepath.Join(dir, "disk.raw"), "disk", 0o644)
	secret := []cloud.Var{{Name: "token", Value: "s3cr3t-t0ken-value", Secret: true}}
	plain := []config.Step{{Shell: "setup.sh"}}
	big := []config.Step{{Shell: "setup.sh"}, {File: &config.FileStep{Source: "blob", Destination: "/blob"}}}
	tests := []struct {
		name   string
		bucket string
		steps  []config.Step
		build  config.Build
		vars   []cloud.Var
		tests  []string
		disks  DiskBuilder
		want   string // "" for no error
	}{
		{"small inline", "", plain, config.Build{}, nil, []string{"tests/boot.sh"}, nil, ""},
		{"big staged", "kiln-grit", big, config.Build{}, secret, []string{"tests/boot.sh"}, nil, ""},
		{"big inline", "", big, config.Build{}, nil, nil, nil, "EC2 allows 16384: set backend.aws.bucket"},
		{"secret inline", "", plain, config.Build{}, secret, nil, nil, "holds a secret variable"},
		{"file outside", "kiln-grit", []config.Step{{File: &config.FileStep{Source: "/etc/hostname", Destination: "/x"}}}, config.Build{}, nil, nil, nil, "leads outside the project"},
		{"test outside", "kiln-grit", plain, config.Build{}, nil, []string{"../../etc/passwd"}, nil, "boot test: use_cases.u.tests[0]"},
		{"upload given disk", "", nil, config.Build{Method: config.BuildUpload, Disk: "disk.raw"}, nil, []string{"tests/boot.sh"}, nil, ""},
		{"upload missing disk", "", nil, config.Build{Method: config.BuildUpload, Disk: "gone.raw"}, nil, nil, nil, `build.disk "gone.raw"`},
		{"upload without a builder", "", plain, config.Build{Method: config.BuildUpload}, nil, nil, nil, "needs the local image builder"},
		{"upload builder refuses", "", plain, config.Build{Method: config.BuildUpload}, nil, nil, refusingDisks{}, "mmdebstrap is not installed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []rigOption{withConfig(func(c *config.AWSBackend) { c.Bucket = tt.bucket })}
			if tt.disks != nil {
				opts = append(opts, func(_ *config.AWSBackend, o *[]Option) {
					*o = append(*o, WithDiskBuilder(tt.disks), WithStateDir(t.TempDir()))
				})
			}
			r := newRig(t, opts...)
			in := cloud.BuildInput{Region: "us-east-1", Arch: "x86_64", Dir: dir, Vars: tt.vars,
				UseCase: &config.UseCase{Name: "u", Provision: tt.steps, Build: tt.build}}
			err := r.b.CheckBuild(t.Context(), in, tt.tests)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, cloud.ErrInvalid)):
				t.Fatalf("error %v, want an invalid-input error containing %q", err, tt.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, ".kiln")); !os.IsNotExist(err) {
		t.Errorf("the check wrote into the project: %v", err)
	}
}
