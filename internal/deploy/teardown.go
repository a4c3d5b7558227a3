package deploy

import (
	"context"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy/record"
)

// What kiln destroy (package teardown) needs of the deployment core: a
// deployment's settings and record, the lock deploys take, and its
// pre-destroy hooks run as post-deploy hooks are.

// Definition returns deployment name's settings and its record (nil when
// it has none). A personal deployment's settings are its template's; a
// name that is neither in kiln.yaml nor a personal deployment's record is
// an error matching cloud.ErrInvalid.
func (d *Deployer) Definition(name string) (*config.Deployment, *record.Record, error) {
	return d.definition(name)
}

// LockDeployment takes this machine's lock on deployment name, which every
// deploy, promotion and change of its record takes too; the returned
// function releases it.
func (d *Deployer) LockDeployment(ctx context.Context, name string) (func(), error) {
	return d.lock(ctx, name)
}

// HookRunner returns a function that runs one hook of def with the
// environment post-deploy hooks get: the release and outputs rec has, and
// the deployment's inputs, secrets resolved now (their values are
// redacted from what the hook prints).
func (d *Deployer) HookRunner(ctx context.Context, def *config.Deployment, rec *record.Record) (func(context.Context, config.Hook) HookResult, error) {
	inputs, _, _, err := d.inputs(ctx, def)
	if err != nil {
		return nil, err
	}
	rel := &record.Release{Images: map[string]string{}}
	outputs := map[string]string{}
	if rec != nil {
		if rec.Release != nil {
			rel = rec.Release
		}
		outputs = rec.Outputs
	}
	env := d.hookEnv(def, rel, inputs, outputs)
	secrets := secretTexts(inputs)
	return func(ctx context.Context, h config.Hook) HookResult {
		return d.runHook(ctx, h, env, secrets)
	}, nil
}
