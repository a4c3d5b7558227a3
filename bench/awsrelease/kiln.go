package awsrelease

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

// Project says how a kiln project of the benchmark differs from the plain
// one: one use case built in BuildRegion from SourceAMI on an instance,
// released to BuildRegion and Destinations, public, with a one-line
// provisioning script and one test, bundles in user data.
type Project struct {
	Poll        time.Duration
	Concurrency int
	// Bucket stages the recipe and test bundles there (backend.aws.bucket).
	Bucket string
	// UploadDisk builds with method upload from this raw disk.
	UploadDisk string
	// Regions replaces Destinations.
	Regions []string
}

// KilnProject writes the project p describes into dir and returns the path
// of its kiln.yaml.
func KilnProject(dir string, p Project) (string, error) {
	regions := p.Regions
	if regions == nil {
		regions = Destinations
	}
	extra := ""
	if p.Bucket != "" {
		extra += "    bucket: " + p.Bucket + "\n"
	}
	build := "    base: {ami: " + SourceAMI + "}\n    provision:\n      - shell: scripts/setup.sh\n"
	if p.UploadDisk != "" {
		// Recipe files must be inside the project: link the disk in.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		if err := os.Link(p.UploadDisk, filepath.Join(dir, "disk.raw")); err != nil && !os.IsExist(err) {
			return "", fmt.Errorf("link the disk into the project: %w", err)
		}
		build = "    build: {method: upload, disk: disk.raw}\n"
	}
	files := map[string]string{
		"scripts/setup.sh": "#!/bin/sh\necho provisioned >/etc/bench\n",
		"tests/boot.sh":    "#!/bin/sh\ntest -f /etc/bench\n",
		"kiln.yaml": fmt.Sprintf(`project: bench
backend:
  type: aws
  aws:
    allowed_accounts: ["%s"]
    poll_interval: %s
    copy_concurrency: %d
%sregions: [%s]
build_region: %s
use_cases:
  bench:
    architectures: [x86_64]
%s    tests: [tests/boot.sh]
    publish: {public: true}
`, awstest.Account, p.Poll, p.Concurrency, extra, strings.Join(append([]string{BuildRegion}, regions...), ", "), BuildRegion, build),
	}
	return WriteProject(dir, files)
}

// WriteProject writes files (path relative to dir -> contents; scripts
// and all, mode 0755) and returns the path of dir's kiln.yaml.
func WriteProject(dir string, files map[string]string) (string, error) {
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, []byte(text), 0o755); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "kiln.yaml"), nil
}

// Kiln runs a kiln binary on one project against one endpoint.
type Kiln struct {
	Bin      string
	Config   string
	Endpoint string
}

// env is the environment of a kiln process: the standard SDK variables
// pointing at the endpoint with static test credentials, and nothing of
// the developer's own AWS configuration.
func (k Kiln) env() []string {
	dir := filepath.Dir(k.Config)
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"AWS_ENDPOINT_URL=" + k.Endpoint,
		"AWS_ACCESS_KEY_ID=bench",
		"AWS_SECRET_ACCESS_KEY=bench",
		"AWS_REGION=" + BuildRegion,
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "aws-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// Run runs `kiln ARGS -c CONFIG -o json` and returns its standard output
// and how long it took.
func (k Kiln) Run(ctx context.Context, args ...string) ([]byte, time.Duration, error) {
	cmd := exec.CommandContext(ctx, k.Bin, append(args, "-c", k.Config, "-o", "json")...)
	cmd.Dir = filepath.Dir(k.Config)
	cmd.Env = k.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return stdout.Bytes(), wall, fmt.Errorf("kiln %s: %w\n%s%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), wall, nil
}

// Release runs `kiln release` and returns the run's asset id.
func (k Kiln) Release(ctx context.Context, useCase string) (string, time.Duration, error) {
	return k.runID(ctx, "release", useCase)
}

// Build runs `kiln build` and returns the run's asset id.
func (k Kiln) Build(ctx context.Context, useCase string) (string, time.Duration, error) {
	return k.runID(ctx, "build", useCase)
}

// runID runs `kiln COMMAND USECASE`, a command that starts a run, and
// returns the run's asset id from its report.
func (k Kiln) runID(ctx context.Context, command, useCase string) (string, time.Duration, error) {
	out, wall, err := k.Run(ctx, command, useCase)
	if err != nil {
		return "", wall, err
	}
	var rep struct {
		Run struct {
			ID string `json:"id"`
		} `json:"run"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || rep.Run.ID == "" {
		return "", wall, fmt.Errorf("kiln %s: no run id in its report (%v):\n%s", command, err, out)
	}
	return rep.Run.ID, wall, nil
}
