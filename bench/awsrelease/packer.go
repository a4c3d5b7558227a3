package awsrelease

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"
)

// PackerTemplate is the amazon-ebs template both tools' work is compared
// with: build in BuildRegion from source, copy to regions, share with
// group all. communicator none means nothing is provisioned: Packer waits
// for the instance to run, stops it and makes the image.
func PackerTemplate(endpoint, source string, regions []string, pollSeconds int) ([]byte, error) {
	builder := map[string]any{
		"type":                       "amazon-ebs",
		"region":                     BuildRegion,
		"access_key":                 "bench",
		"secret_key":                 "bench",
		"custom_endpoint_ec2":        endpoint,
		"skip_region_validation":     true,
		"skip_credential_validation": true,
		"skip_metadata_api_check":    true,
		"communicator":               "none",
		"source_ami":                 source,
		"instance_type":              "t3.micro",
		"ami_name":                   "packer-bench-{{timestamp}}",
		"ami_regions":                regions,
		"ami_groups":                 []string{"all"},
		// The same fixed pause for every waiter that kiln's poll_interval
		// sets for its first pause.
		"aws_polling": map[string]int{"delay_seconds": pollSeconds, "max_attempts": 600},
	}
	return json.MarshalIndent(map[string]any{"builders": []any{builder}}, "", "  ")
}

// PackerResult is what one packer build did.
type PackerResult struct {
	Wall   time.Duration
	Images map[string]string // region -> AMI id, from the artifact line
	Log    string            // PACKER_LOG output, for failures
}

var packerArtifactRE = regexp.MustCompile(`(?m)^([a-z0-9-]+): (ami-[0-9a-z]+)$`)

// RunPacker writes the template into dir and runs `packer build` on it,
// with Packer's home, cache and plugin directories in dir and its update
// check off, so nothing outside the benchmark is read or reached.
func RunPacker(ctx context.Context, bin, dir string, template []byte) (PackerResult, error) {
	path := filepath.Join(dir, "template.json")
	if err := os.WriteFile(path, template, 0o644); err != nil {
		return PackerResult{}, err
	}
	logPath := filepath.Join(dir, "packer.log")
	cmd := exec.CommandContext(ctx, bin, "build", "-color=false", "-machine-readable=false", path)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"TMPDIR=" + dir,
		"PACKER_CONFIG_DIR=" + dir,
		"PACKER_CACHE_DIR=" + filepath.Join(dir, "cache"),
		"CHECKPOINT_DISABLE=1",
		"PACKER_LOG=1",
		"PACKER_LOG_PATH=" + logPath,
		"AWS_EC2_METADATA_DISABLED=true",
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	res := PackerResult{Wall: time.Since(start), Images: map[string]string{}}
	if data, rerr := os.ReadFile(logPath); rerr == nil {
		res.Log = string(data)
	}
	if err != nil {
		return res, fmt.Errorf("packer build: %w\n%s", err, out)
	}
	for _, m := range packerArtifactRE.FindAllStringSubmatch(string(out), -1) {
		res.Images[m[1]] = m[2]
	}
	return res, nil
}
