package awssecret

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

// Secrets are read from moto as from AWS: SecureStrings decrypted, plain
// Strings refused, Secrets Manager strings, absent ones not found.
func TestSecrets(t *testing.T) {
	moto := awstest.StartMoto(t)
	t.Setenv("AWS_ENDPOINT_URL", moto.URL)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	s := New("")
	cfg, err := s.config(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Region = "eu-west-1"
	sc := ssm.NewFromConfig(cfg)
	for name, typ := range map[string]ssmtypes.ParameterType{"/demo/token": ssmtypes.ParameterTypeSecureString, "/demo/plain": ssmtypes.ParameterTypeString} {
		if _, err := sc.PutParameter(t.Context(), &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("v-" + name), Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := secretsmanager.NewFromConfig(cfg).CreateSecret(t.Context(), &secretsmanager.CreateSecretInput{
		Name: aws.String("demo/db"), SecretString: aws.String("s3cret"),
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind, name, region, want string
		err                      error
		msg                      string
	}{
		{"ssm", "/demo/token", "eu-west-1", "v-/demo/token", nil, ""},
		{"ssm", "/demo/plain", "eu-west-1", "", cloud.ErrInvalid, "is a String, not a SecureString"},
		{"ssm", "/demo/none", "eu-west-1", "", cloud.ErrNotFound, "does not exist"},
		{"ssm", "/demo/token", "us-east-1", "", cloud.ErrNotFound, "does not exist"}, // another region
		{"secrets_manager", "demo/db", "eu-west-1", "s3cret", nil, ""},
		{"secrets_manager", "demo/none", "eu-west-1", "", cloud.ErrNotFound, "does not exist"},
	} {
		got, err := s.Secret(t.Context(), tc.kind, tc.name, tc.region)
		switch {
		case tc.err == nil && (err != nil || got != tc.want):
			t.Errorf("%s %s: %q, %v; want %q", tc.kind, tc.name, got, err, tc.want)
		case tc.err != nil && (!errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg)):
			t.Errorf("%s %s in %s: %v; want %v with %q", tc.kind, tc.name, tc.region, err, tc.err, tc.msg)
		case err != nil && strings.Contains(err.Error(), "v-/demo"):
			t.Errorf("the error shows the value: %v", err)
		}
	}
}
