package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/forge"
	"github.com/kiln-images/kiln/internal/gitdoc"
	"github.com/kiln-images/kiln/internal/gitrepo"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/report"
)

// documentOptions are the flags of the commands that write a channel
// manifest which record the change on the git remote rather than in the
// work tree: a merge request, or a push onto a branch. Unlike --commit
// they work from any checkout, however far behind (a CI job's), and never
// touch the work tree's branch.
type documentOptions struct {
	mergeRequest bool
	pushTo       string
}

func (o *documentOptions) addDocumentFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.mergeRequest, "merge-request", false,
		"push the manifest change to a branch of its own (kiln/CHANNEL/RUN) and open a merge request (GitLab) or pull request (GitHub), or find the one already open")
	cmd.Flags().StringVar(&o.pushTo, "push-to", "",
		"commit the manifest change onto BRANCH as the remote has it and push it there; if BRANCH moved meanwhile, again on its new tip")
}

// documenter records a command's manifest change on the remote.
type documenter struct {
	cfg    *config.Config
	opts   gitdoc.Options
	forge  forge.Forge // nil: push
	branch string      // merge request: its target; push: the branch pushed to
}

// documenter checks the flags and everything they need before anything is
// done — a git work tree, the remote, and for a merge request the forge,
// its token and the target branch — and returns nil without either flag.
func (o documentOptions) documenter(ctx context.Context, g *globalOptions, cfg *config.Config, committing bool) (*documenter, error) {
	if !o.mergeRequest && o.pushTo == "" {
		return nil, nil
	}
	if o.mergeRequest && o.pushTo != "" {
		return nil, usageError(errors.New("--merge-request and --push-to are two ways to record the change; give one"))
	}
	if committing {
		return nil, usageError(errors.New("--merge-request and --push-to commit the change themselves, on the remote's branch; leave out --commit"))
	}
	flag := "--push-to"
	if o.mergeRequest {
		flag = "--merge-request"
	}
	fail := func(err error) (*documenter, error) { return nil, usageError(fmt.Errorf("%s: %w", flag, err)) }
	if o.pushTo != "" && !config.ValidBranch(o.pushTo) {
		return fail(fmt.Errorf("%q is not a branch name", o.pushTo))
	}
	repo, err := gitrepo.Open(ctx, cfg.Dir)
	if err != nil {
		return fail(fmt.Errorf("the project %w", err))
	}
	remote := cfg.Forge.Remote
	url, err := repo.RemoteURL(ctx, remote)
	if err != nil {
		return fail(fmt.Errorf("%w (forge.remote names the remote kiln pushes to)", err))
	}
	d := &documenter{cfg: cfg, branch: o.pushTo}
	kind, project, apiURL, perr := forgeOf(cfg.Forge, url)
	token := ""
	if kind != "" {
		token = os.Getenv(tokenEnv(cfg.Forge, kind))
	}
	if o.mergeRequest {
		if perr != nil {
			return fail(perr)
		}
		env := tokenEnv(cfg.Forge, kind)
		if token == "" {
			return fail(fmt.Errorf("$%s is empty: set it to a token that may open merge requests and push (forge.token_env names the variable)", env))
		}
		if d.forge, err = forge.New(forge.Options{Type: kind, APIURL: apiURL, Project: project, Token: token, UserAgent: "kiln/" + version, Log: g.logger()}); err != nil {
			return fail(err)
		}
	}
	// Pushes over http(s) carry the token where there is one: a CI job's
	// own clone credentials may only read.
	user := "oauth2"
	if kind == forge.GitHub {
		user = "x-access-token"
	}
	if repo, err = gitrepo.Open(ctx, cfg.Dir, gitrepo.HTTPAuth(url, user, token)...); err != nil {
		return fail(err)
	}
	d.opts = gitdoc.Options{Repo: repo, Remote: remote, Log: g.logger()}
	if o.mergeRequest {
		if d.branch = cfg.Forge.TargetBranch; d.branch == "" {
			if d.branch, err = repo.DefaultBranch(ctx, remote); err != nil {
				return fail(fmt.Errorf("%w (or set forge.target_branch)", err))
			}
		}
	}
	return d, nil
}

// forgeOf works out the forge of the project: what kiln.yaml says, the
// rest from the remote's URL.
func forgeOf(f config.Forge, remoteURL string) (kind, project, apiURL string, err error) {
	kind, project, apiURL = f.Type, f.Project, f.APIURL
	if kind != "" && project != "" && apiURL != "" {
		return kind, project, apiURL, nil
	}
	r, perr := forge.ParseRemote(remoteURL)
	if perr != nil {
		return kind, "", "", fmt.Errorf("%w; set forge.type, forge.project and forge.api_url", perr)
	}
	if kind == "" {
		if kind = r.Guess(); kind == "" {
			return "", "", "", fmt.Errorf("remote %s: cannot tell whether host %s is GitLab or GitHub; set forge.type", f.Remote, r.Host)
		}
	}
	if project == "" {
		project = r.Project
	}
	if apiURL == "" {
		apiURL = r.APIURL(kind)
	}
	return kind, project, apiURL, nil
}

func tokenEnv(f config.Forge, kind string) string {
	if f.TokenEnv != "" {
		return f.TokenEnv
	}
	return config.DefaultTokenEnv(kind)
}

// change is the change of a channel's manifest a command made: the keys
// it is about (nil: all), as the work tree now has them.
func (d *documenter) change(channelName string, keys []string, subject, about string) (gitdoc.Change, error) {
	m, err := channel.Load(d.cfg, channelName)
	if err != nil {
		return gitdoc.Change{}, err
	}
	return gitdoc.Change{Config: d.cfg, Channel: channelName, Keys: keys, Manifest: m, Subject: subject, About: about}, nil
}

// record records c, proposing it from source for a merge request.
func (d *documenter) record(ctx context.Context, g *globalOptions, c gitdoc.Change, source string) (report.Document, error) {
	if d.forge == nil {
		res, err := gitdoc.Push(ctx, c, d.opts, d.branch)
		if err != nil {
			return report.Document{}, fmt.Errorf("--push-to %s: %w", d.branch, err)
		}
		if res.Commit == "" {
			fmt.Fprintf(g.streams.err, "%s already has this change of %s\n", d.branch, c.Channel)
		} else {
			fmt.Fprintf(g.streams.err, "pushed %s to %s\n", res.Commit, d.branch)
		}
		return report.Document{Push: &res}, nil
	}
	res, err := gitdoc.Propose(ctx, c, d.opts, d.forge, source, d.branch)
	if err != nil {
		return report.Document{}, fmt.Errorf("--merge-request: %w", err)
	}
	switch {
	case res.Commit == "" && res.URL == "":
		fmt.Fprintf(g.streams.err, "%s already has this change of %s; no merge request needed\n", d.branch, c.Channel)
	case res.Created:
		fmt.Fprintf(g.streams.err, "opened merge request %s (%s into %s)\n", res.URL, source, d.branch)
	case res.Updated:
		fmt.Fprintf(g.streams.err, "merge request %s is open (%s into %s); its description now shows the change against %s as it is\n", res.URL, source, d.branch, d.branch)
	default:
		fmt.Fprintf(g.streams.err, "merge request %s is open (%s into %s)\n", res.URL, source, d.branch)
	}
	return report.Document{MergeRequest: &res}, nil
}

// recordRun records run r's change to channelName as a journaled step of
// the run: the branch before, the request's URL (or the commit) after.
func (d *documenter) recordRun(ctx context.Context, g *globalOptions, p *project, r pipeline.Run, channelName string, regions []string) (report.Document, error) {
	u, err := p.cfg.UseCase(r.UseCase)
	if err != nil {
		return report.Document{}, err
	}
	about := fmt.Sprintf("kiln run `%s` published **%s** %s version %s to channel **%s** in %s.",
		r.ID, r.UseCase, r.Arch, r.Version, channelName, listRegions(regions))
	c, err := d.change(channelName, []string{u.ManifestKey(r.Arch)}, publishSubject(r, channelName), about)
	if err != nil {
		return report.Document{}, err
	}
	source := "kiln/" + channelName + "/" + r.ID
	name, detail := "merge request", source+" into "+d.branch
	if d.forge == nil {
		name, detail = "push", d.branch
	}
	var rep report.Document
	err = p.pl.Document(ctx, r, name, detail, func(ctx context.Context) (string, error) {
		var err error
		rep, err = d.record(ctx, g, c, source)
		switch {
		case rep.MergeRequest != nil:
			return rep.MergeRequest.URL, err
		case rep.Push != nil:
			return rep.Push.Commit, err
		}
		return "", err
	})
	return rep, err
}

func listRegions(regions []string) string {
	if len(regions) == 0 {
		return "no region"
	}
	return strings.Join(regions, ", ")
}

// branchSafe turns text (a git ref a rollback restores) into something a
// branch name may hold.
var branchUnsafe = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func branchSafe(s string) string {
	s = strings.Trim(branchUnsafe.ReplaceAllString(s, "-"), "-.")
	if s == "" {
		s = "ref"
	}
	return strings.TrimSuffix(s, ".lock")
}

// recordPromotion records a promotion of useCase into channel to.
func (d *documenter) recordPromotion(ctx context.Context, g *globalOptions, cfg *config.Config, useCase, from, to, subject string, rep pipeline.PromoteReport) (report.Document, error) {
	u, err := cfg.UseCase(useCase)
	if err != nil {
		return report.Document{}, err
	}
	keys := make([]string, 0, len(u.Architectures))
	for _, arch := range u.Architectures {
		keys = append(keys, u.ManifestKey(arch))
	}
	var gates []string
	for _, gt := range rep.Gates {
		gates = append(gates, gt.Name)
	}
	about := fmt.Sprintf("kiln promoted **%s** from channel **%s** to **%s**; gates passed: %s.", useCase, from, to, strings.Join(gates, ", "))
	c, err := d.change(to, keys, subject, about)
	if err != nil {
		return report.Document{}, err
	}
	return d.record(ctx, g, c, "kiln/"+to+"/promote-"+useCase+"-from-"+from)
}

// regionsOf lists the regions of a publish's results.
func regionsOf(rs []pipeline.RegionResult) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Region)
	}
	return out
}
