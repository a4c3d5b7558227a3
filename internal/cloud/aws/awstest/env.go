package awstest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Account is moto's account id.
const Account = "123456789012"

// Env points the AWS SDK's standard configuration at endpoint for the rest
// of the test: AWS_ENDPOINT_URL, static test credentials, empty shared
// config files (so the developer's ~/.aws does not leak in), no instance
// metadata lookups, and no service-specific endpoint overrides.
func Env(t testing.TB, endpoint string) {
	t.Helper()
	dir := t.TempDir()
	cfg, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	for _, p := range []string{cfg, creds} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			unsetenv(t, k)
		}
	}
	t.Setenv("AWS_ENDPOINT_URL", endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", "awstest")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "awstest")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", cfg)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// unsetenv removes a variable for the rest of the test (t.Setenv restores
// it afterwards).
func unsetenv(t testing.TB, k string) {
	t.Setenv(k, "")
	os.Unsetenv(k)
}

// Config is an SDK config for talking to endpoint directly in region,
// independent of the environment: for tests' own checks and setup.
func Config(endpoint, region string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider("awstest", "awstest", ""),
		BaseEndpoint: aws.String(endpoint),
	}
}
