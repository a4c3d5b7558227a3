package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/cloud/aws"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/deploy/awssecret"
	"github.com/kiln-images/kiln/internal/deploy/awsunit"
	"github.com/kiln-images/kiln/internal/deploy/localunit"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/manifest"
)

// deployer returns the project's deployment engine: the backend's unit
// kinds, the journal, the failpoints and progress of the pipeline.
func (p *project) deployer(g *globalOptions) *deploy.Deployer {
	return &deploy.Deployer{
		Config:   p.cfg,
		Images:   p.backend,
		Kinds:    unitKinds(p, g),
		Journal:  p.journal,
		Secrets:  awssecret.New(p.cfg.Backend.AWS.Profile),
		Who:      who(p.cfg.Dir),
		Hook:     p.pl.Hook,
		Progress: p.pl.Progress,
		Log:      g.logger(),
	}
}

// unitKinds are the unit kinds of the project's backend.
func unitKinds(p *project, g *globalOptions) map[string]deploy.UnitKind {
	kinds := map[string]deploy.UnitKind{}
	switch b := p.backend.(type) {
	case *local.Backend:
		o := localunit.Options{StateDir: p.cfg.StateDir(), ReadyTimeout: p.cfg.Backend.Local.BootTimeout.Std(), Log: g.logger()}
		kinds[config.UnitVM] = localunit.NewVM(o, b, p.cfg.Backend.Local.Accel)
		kinds[config.UnitProcess] = localunit.NewProcess(o)
	case *aws.Backend:
		o := awsunit.Options{Config: b.SDKConfig(), Poll: p.cfg.Backend.AWS.PollInterval.Std(), Hook: p.pl.Hook, Log: g.logger()}
		kinds[config.UnitStack] = awsunit.NewStack(o)
		kinds[config.UnitInstance] = awsunit.NewInstance(o)
	}
	return kinds
}

// who names the person acting, for records: $KILN_USER, else git's
// user.email (or name) in the project, else $USER.
func who(dir string) string {
	if u := os.Getenv("KILN_USER"); u != "" {
		return u
	}
	for _, key := range []string{"user.email", "user.name"} {
		if out, err := exec.Command("git", "-C", dir, "config", key).Output(); err == nil && strings.TrimSpace(string(out)) != "" {
			return strings.TrimSpace(string(out))
		}
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "unknown"
}

// deploymentExists reports whether name is a deployment of the project
// (in kiln.yaml, or a personal one with a record), for commands that take
// channels or deployments.
func deploymentExists(cfg *config.Config, name string) bool {
	if _, ok := cfg.Deployments[name]; ok {
		return true
	}
	_, err := os.Stat(record.Path(cfg.Dir, name))
	return err == nil
}

// recordOptions are the flags of commands that change a deployment's
// record: keep its history in git as part of the command.
type recordOptions struct {
	commit, push, tag bool
}

func (o *recordOptions) addFlags(cmd *cobra.Command, tag bool) {
	cmd.Flags().BoolVar(&o.commit, "commit", false, "commit the deployment's record to git (only that file)")
	cmd.Flags().BoolVar(&o.push, "push", false, "with --commit: push the commit (and tag) to the upstream")
	if tag {
		cmd.Flags().BoolVar(&o.tag, "tag", false, "with --commit: tag a successful deploy as deploy/NAME/TIME")
	}
}

// check refuses the flags before anything is done when they cannot work.
func (o recordOptions) check(ctx context.Context, cfg *config.Config) error {
	if (o.push || o.tag) && !o.commit {
		return usageError(errors.New("--push and --tag go with --commit"))
	}
	if !o.commit {
		return nil
	}
	if err := manifest.CheckWorkTree(ctx, cfg.Dir); err != nil {
		return usageError(fmt.Errorf("--commit: the records in %s: %w", filepath.Join(cfg.Dir, record.Dir), err))
	}
	return nil
}

// record commits deployment name's record when asked, with subject, and
// with --tag tags the commit when ok. It returns the commit's hash.
func (o recordOptions) record(ctx context.Context, g *globalOptions, cfg *config.Config, name, subject string, ok bool) (string, error) {
	if !o.commit {
		return "", nil
	}
	path := record.Path(cfg.Dir, name)
	if _, err := os.Stat(path); err != nil {
		return "", nil
	}
	hash, err := manifest.CommitFile(ctx, path, subject, o.push && !o.tag)
	if hash != "" {
		fmt.Fprintf(g.streams.err, "committed %s as %s\n", path, hash)
	}
	if err != nil || !o.tag || !ok || hash == "" {
		return hash, err
	}
	tag := "deploy/" + name + "/" + time.Now().UTC().Format("20060102T150405Z")
	if err := manifest.Tag(ctx, cfg.Dir, tag, hash, subject, false); err != nil {
		return hash, err
	}
	fmt.Fprintf(g.streams.err, "tagged %s as %s\n", hash, tag)
	if o.push {
		if err := gitPush(ctx, cfg.Dir, tag); err != nil {
			return hash, err
		}
	}
	return hash, nil
}

// gitPush pushes the branch and tag.
func gitPush(ctx context.Context, dir, tag string) error {
	for _, args := range [][]string{{"push", "--quiet"}, {"push", "--quiet", "origin", "refs/tags/" + tag}} {
		if out, err := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// deployError turns a refusal (gates, locks, a failed hook or
// verification) into findings, exit 1; other errors stay errors, exit 2.
func deployError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, deploy.ErrRefused) {
		return findings("%s", err.Error())
	}
	return err
}
