package scale

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// awsRegionNames are sixteen real regions, in the order the benchmarks
// take them.
var awsRegionNames = []string{
	"us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1",
	"eu-north-1", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "ap-northeast-2", "ap-south-1",
	"ca-central-1", "sa-east-1",
}

// Regions returns n region names for backend "local" or "aws".
func Regions(backend string, n int) ([]string, error) {
	if backend == "aws" {
		if n < 1 || n > len(awsRegionNames) {
			return nil, fmt.Errorf("aws: 1 to %d regions, not %d", len(awsRegionNames), n)
		}
		return awsRegionNames[:n], nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("region-%02d", i+1)
	}
	return out, nil
}

// UseCases returns n use case names.
func UseCases(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("uc-%02d", i+1)
	}
	return out
}

// Account is moto's account id, the one the aws projects allow.
const Account = "123456789012"

// WriteProject writes a kiln project into dir for backend ("local" or
// "aws") with regions and one public, single-architecture use case per
// name, and returns the path of its kiln.yaml.
func WriteProject(dir, backend string, regions, useCases []string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "project: scale\nregions: [%s]\n", strings.Join(regions, ", "))
	fmt.Fprintf(&b, "cost_tag: {key: deployment_name, value: scale}\n")
	base := "{suite: bookworm}"
	if backend == "aws" {
		fmt.Fprintf(&b, "backend:\n  type: aws\n  aws:\n    allowed_accounts: [%q]\n", Account)
		base = "{ami: ami-12c6146b}"
	}
	b.WriteString("channels:\n  latest: {}\n")
	b.WriteString("use_cases:\n")
	for _, u := range useCases {
		fmt.Fprintf(&b, "  %s:\n    architectures: [x86_64]\n    base: %s\n    tests: [tests/boot.sh]\n    publish: {public: true}\n", u, base)
	}
	files := map[string]string{
		"kiln.yaml":     b.String(),
		"tests/boot.sh": "#!/bin/sh\ntrue\n",
		".gitignore":    ".kiln/\n",
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "kiln.yaml"), nil
}
