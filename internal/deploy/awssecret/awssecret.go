// Package awssecret reads the secrets deployments take by reference from
// AWS: SSM SecureString parameters and Secrets Manager secrets. It is the
// deploy.SecretSource of both backends (a local deployment may read its
// secrets from AWS too).
package awssecret

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy"
)

// Source reads secrets with the standard credential chain (or profile),
// making its clients per region on first use. The SDK config is loaded
// on the first read, so a project that reads no secret from AWS needs no
// AWS configuration.
type Source struct {
	profile string

	once sync.Once
	base aws.Config
	err  error

	mu  sync.Mutex
	ssm map[string]*ssm.Client
	sm  map[string]*secretsmanager.Client
}

var _ deploy.SecretSource = (*Source)(nil)

// New returns a source using profile ("" for the default chain).
func New(profile string) *Source {
	return &Source{profile: profile, ssm: map[string]*ssm.Client{}, sm: map[string]*secretsmanager.Client{}}
}

func (s *Source) config(ctx context.Context) (aws.Config, error) {
	s.once.Do(func() {
		var opts []func(*awsconfig.LoadOptions) error
		if s.profile != "" {
			opts = append(opts, awsconfig.WithSharedConfigProfile(s.profile))
		}
		s.base, s.err = awsconfig.LoadDefaultConfig(ctx, opts...)
		if s.err != nil {
			s.err = fmt.Errorf("load the AWS SDK config: %w", s.err)
		}
	})
	return s.base, s.err
}

// Secret reads a secret. kind "ssm" must name a SecureString parameter:
// a plain String is refused, as the secret would then be stored in the
// clear. kind "secrets_manager" must have a string value.
func (s *Source) Secret(ctx context.Context, kind, name, region string) (string, error) {
	base, err := s.config(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := base.Copy()
	cfg.Region = region
	switch kind {
	case "ssm":
		c := s.ssm[region]
		if c == nil {
			c = ssm.NewFromConfig(cfg)
			s.ssm[region] = c
		}
		out, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return "", cloud.Mark(fmt.Errorf("SSM parameter %s does not exist", name), cloud.ErrNotFound)
		}
		if err != nil {
			return "", fmt.Errorf("SSM parameter %s: %w", name, err)
		}
		if out.Parameter.Type != ssmtypes.ParameterTypeSecureString {
			return "", cloud.Mark(fmt.Errorf("SSM parameter %s is a %s, not a SecureString; keep secrets encrypted", name, out.Parameter.Type), cloud.ErrInvalid)
		}
		return aws.ToString(out.Parameter.Value), nil
	case "secrets_manager":
		c := s.sm[region]
		if c == nil {
			c = secretsmanager.NewFromConfig(cfg)
			s.sm[region] = c
		}
		out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		var nf *smtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return "", cloud.Mark(fmt.Errorf("secret %s does not exist", name), cloud.ErrNotFound)
		}
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", name, err)
		}
		if out.SecretString == nil {
			return "", cloud.Mark(fmt.Errorf("secret %s has a binary value; kiln passes text", name), cloud.ErrInvalid)
		}
		return *out.SecretString, nil
	}
	return "", cloud.Mark(fmt.Errorf("unknown kind of secret %q", kind), cloud.ErrInvalid)
}
