package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// SecretSource reads secrets kept in a cloud.
type SecretSource interface {
	// Secret returns a secret's value: kind "ssm" is an SSM SecureString
	// parameter (decrypted), "secrets_manager" a Secrets Manager secret's
	// string. An absent secret is an error matching cloud.ErrNotFound.
	// Errors never contain the value.
	Secret(ctx context.Context, kind, name, region string) (string, error)
}

// maxSecretFile bounds a secret read from a file.
const maxSecretFile = 64 << 10

// inputs resolves a deployment's inputs: literals, other deployments'
// outputs from their records, and secrets, read now and kept only in
// memory. params and secrets are what the record says of them: the
// values that are not secret, and the references of those that are.
func (d *Deployer) inputs(ctx context.Context, def *config.Deployment) (vals map[string]Value, params, secrets map[string]string, err error) {
	vals, params, secrets = map[string]Value{}, map[string]string{}, map[string]string{}
	for _, name := range sortedKeys(def.Inputs) {
		in := def.Inputs[name]
		switch {
		case in.Value != nil:
			vals[name] = Value{Text: *in.Value}
			params[name] = *in.Value
		case in.From != "":
			dep, out, _ := strings.Cut(in.From, ".")
			rec, ok, err := record.Load(d.Config.Dir, dep)
			if err != nil {
				return nil, nil, nil, err
			}
			if !ok || rec.State == record.StateDestroyed {
				return nil, nil, nil, cloud.Mark(fmt.Errorf("deployment %s input %s: deployment %s is not deployed; deploy it first", def.Name, name, dep), cloud.ErrNotFound)
			}
			v, ok := rec.Outputs[out]
			if !ok {
				return nil, nil, nil, cloud.Mark(fmt.Errorf("deployment %s input %s: deployment %s has no output %q (it has: %s)",
					def.Name, name, dep, out, strings.Join(sortedKeys(rec.Outputs), ", ")), cloud.ErrNotFound)
			}
			vals[name] = Value{Text: v}
			params[name] = v
		case in.Secret != nil:
			ref, v, err := d.secret(ctx, def, in.Secret)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("deployment %s input %s: %w", def.Name, name, err)
			}
			vals[name] = Value{Text: v, Secret: true}
			secrets[name] = ref
		}
	}
	return vals, params, secrets, nil
}

// secret reads one secret and returns its reference and value.
func (d *Deployer) secret(ctx context.Context, def *config.Deployment, s *config.SecretRef) (ref, value string, err error) {
	region := s.Region
	if region == "" {
		region = def.Region
	}
	switch {
	case s.Env != "":
		ref = "env:" + s.Env
		getenv := d.Getenv
		if getenv == nil {
			getenv = os.LookupEnv
		}
		v, ok := getenv(s.Env)
		if !ok {
			return ref, "", cloud.Mark(fmt.Errorf("secret %s: the environment variable %s is not set", ref, s.Env), cloud.ErrNotFound)
		}
		return ref, v, nil
	case s.File != "":
		ref = "file:" + s.File
		f, err := os.Open(d.Config.Resolve(s.File))
		if errors.Is(err, fs.ErrNotExist) {
			return ref, "", cloud.Mark(fmt.Errorf("secret %s: %s does not exist", ref, d.Config.Resolve(s.File)), cloud.ErrNotFound)
		} else if err != nil {
			return ref, "", fmt.Errorf("secret %s: %w", ref, err)
		}
		defer f.Close()
		buf := make([]byte, maxSecretFile+1)
		n, _ := f.Read(buf)
		if n > maxSecretFile {
			return ref, "", fmt.Errorf("secret %s: larger than %d bytes", ref, maxSecretFile)
		}
		return ref, strings.TrimRight(string(buf[:n]), "\r\n"), nil
	case s.SSM != "":
		return d.cloudSecret(ctx, "ssm", s.SSM, region)
	default:
		return d.cloudSecret(ctx, "secrets_manager", s.SecretsManager, region)
	}
}

func (d *Deployer) cloudSecret(ctx context.Context, kind, name, region string) (string, string, error) {
	ref := kind + ":" + name
	if d.Secrets == nil {
		return ref, "", fmt.Errorf("secret %s: kiln has no access to %s here", ref, kind)
	}
	v, err := d.Secrets.Secret(ctx, kind, name, region)
	if err != nil {
		return ref, "", fmt.Errorf("secret %s in %s: %w", ref, region, err)
	}
	return ref, v, nil
}
