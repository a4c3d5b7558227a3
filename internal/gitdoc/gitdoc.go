package gitdoc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/forge"
	"github.com/kiln-images/kiln/internal/gitrepo"
	"github.com/kiln-images/kiln/internal/manifest"
)

// Change is a change kiln made to a channel's manifest.
type Change struct {
	Config  *config.Config
	Channel string
	// Keys are the manifest keys (kiln's, config.UseCase.ManifestKey)
	// the change is about: on the branch their entries become Manifest's,
	// every other key stays as the branch has it. Nil means the whole
	// manifest (a rollback).
	Keys []string
	// Manifest is the channel as the command left it.
	Manifest manifest.Manifest
	// Subject is the commit's subject and the request's title.
	Subject string
	// About is Markdown for the request's description, before the diff:
	// the run, the regions.
	About string
}

// Options say where a change goes.
type Options struct {
	Repo   *gitrepo.Repo
	Remote string       // the remote's name, e.g. origin
	Log    *slog.Logger // nil: discard
	// Attempts bounds how often the change is applied again when the
	// branch moved between fetch and push; default 5.
	Attempts int
}

func (o Options) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (o Options) attempts() int {
	if o.Attempts > 0 {
		return o.Attempts
	}
	return 5
}

// Result is where a change went.
type Result struct {
	// Branch is the branch the commit is on: the one pushed to, or the
	// request's source branch.
	Branch string `json:"branch"`
	// Target is the branch a request merges into ("" for a push).
	Target string `json:"target_branch,omitempty"`
	// Commit holds the change; "" when the branch had it already.
	Commit string `json:"commit,omitempty"`
	// Pushed says whether this call pushed it (a rerun may find it there).
	Pushed bool `json:"pushed"`
	// Attempts is how many times the change was applied: more than one
	// when the branch moved meanwhile.
	Attempts int `json:"attempts"`
	// URL, Number and State are the open merge or pull request's, if
	// there is one (Propose).
	URL    string `json:"url,omitempty"`
	Number int    `json:"number,omitempty"`
	State  string `json:"state,omitempty"`
	// Created says whether this call opened it; Updated whether it set
	// the title and description of one found open with others.
	Created bool `json:"created,omitempty"`
	Updated bool `json:"updated,omitempty"`
	// Request is the request itself.
	Request *forge.Request `json:"-"`
	// Changes are the change as the branch sees it, in the file's terms.
	Changes []manifest.Change `json:"-"`
}

// prepared is a change applied on a branch's tip.
type prepared struct {
	tip     string // the branch's commit it is made on
	path    string // the manifest in the repository's tree
	commit  string // "" when the tip has the change already
	changes []manifest.Change
}

// prepare fetches base and makes a commit on its tip that applies c to the
// manifest there.
func prepare(ctx context.Context, c Change, o Options, base string) (prepared, error) {
	var p prepared
	file, err := c.Config.ManifestPath(c.Channel)
	if err != nil {
		return p, err
	}
	if p.path, err = o.Repo.Path(ctx, file); err != nil {
		return p, err
	}
	if p.tip, err = o.Repo.Fetch(ctx, o.Remote, base); err != nil {
		return p, err
	}
	if p.tip == "" {
		return p, fmt.Errorf("branch %s does not exist on %s", base, o.Remote)
	}
	ls, err := channel.Layouts(c.Config, c.Channel)
	if err != nil {
		return p, err
	}
	write := ls[0]
	theirs, theirLayout := manifest.Manifest{}, write
	data, ok, err := o.Repo.ReadFile(ctx, p.tip, p.path)
	if err != nil {
		return p, err
	}
	name := o.Remote + "/" + base + ":" + p.path
	if ok {
		if theirs, theirLayout, err = manifest.CheckAny(name, data, channel.Rules(c.Config.Backend.Type), ls...); err != nil {
			return p, fmt.Errorf("the manifest on %s/%s: %w", o.Remote, base, err)
		}
	}
	merged := c.apply(theirs)
	p.changes = manifest.DiffLayouts(theirs, theirLayout, merged, write)
	if len(p.changes) == 0 {
		return p, nil
	}
	if err := write.Validate(name, merged, channel.Rules(c.Config.Backend.Type)); err != nil {
		return p, fmt.Errorf("refusing to commit an invalid manifest: %w", err)
	}
	out, err := write.Encode(merged)
	if err != nil {
		return p, err
	}
	var msg bytes.Buffer
	msg.WriteString(c.Subject + "\n\n")
	manifest.FormatDiff(&msg, p.changes)
	p.commit, err = o.Repo.CommitFile(ctx, p.tip, p.path, out, msg.String())
	return p, err
}

// apply returns theirs with the change's keys as the change has them.
func (c Change) apply(theirs manifest.Manifest) manifest.Manifest {
	out := manifest.Manifest{}
	if c.Keys == nil {
		copyKeys(out, c.Manifest, nil)
		return out
	}
	copyKeys(out, theirs, func(k string) bool {
		for _, own := range c.Keys {
			if k == own {
				return false
			}
		}
		return true
	})
	copyKeys(out, c.Manifest, func(k string) bool {
		for _, own := range c.Keys {
			if k == own {
				return true
			}
		}
		return false
	})
	return out
}

func copyKeys(dst, src manifest.Manifest, keep func(string) bool) {
	for _, l := range src.Entries() {
		if keep == nil || keep(l.UseCase) {
			dst.Set(l.UseCase, l.Region, l.Entry)
		}
	}
}

// again pauses before another attempt, a little at random so that two
// processes that collided do not collide again in step.
func again(ctx context.Context, o Options, attempt int, branch string, err error) error {
	if attempt >= o.attempts() {
		return fmt.Errorf("%w; gave up after %d attempts", err, attempt)
	}
	o.log().Info("the branch moved; applying the change again on its new tip", "branch", branch, "attempt", attempt, "reason", err.Error())
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(50+rand.IntN(200*attempt)) * time.Millisecond):
		return nil
	}
}

// Push records c on branch itself: a commit of the manifest alone on the
// branch's newest commit, pushed as a fast-forward; when the branch moved
// meanwhile, again on its new tip.
func Push(ctx context.Context, c Change, o Options, branch string) (Result, error) {
	res := Result{Branch: branch}
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		p, err := prepare(ctx, c, o, branch)
		if err != nil {
			return res, err
		}
		res.Changes = p.changes
		if p.commit == "" {
			return res, nil
		}
		_, err = o.Repo.Push(ctx, o.Remote, p.commit, branch, gitrepo.PushOptions{})
		var rej *gitrepo.RejectedError
		if errors.As(err, &rej) && rej.Moved {
			if err := again(ctx, o, attempt, branch, err); err != nil {
				return res, err
			}
			continue
		}
		if err != nil {
			return res, err
		}
		res.Commit, res.Pushed = p.commit, true
		return res, nil
	}
}

// Propose records c on source, a branch of its own, as a commit on
// target's newest commit, and opens the request from source into target
// on f, or finds the one already open. A rerun finds source as it left it
// and the request it opened; when target moved meanwhile, source is made
// again on target's new tip (the request then shows the change against
// what target has now). When target has the change already there is
// nothing to propose: the result has no commit, and the request only if
// one is still open.
func Propose(ctx context.Context, c Change, o Options, f forge.Forge, source, target string) (Result, error) {
	res := Result{Branch: source, Target: target}
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		p, err := prepare(ctx, c, o, target)
		if err != nil {
			return res, err
		}
		res.Changes = p.changes
		if p.commit == "" {
			res.Request, err = f.FindOpen(ctx, source, target)
			res.setRequest()
			return res, err
		}
		existing, err := o.Repo.Fetch(ctx, o.Remote, source)
		if err != nil {
			return res, err
		}
		same, err := sameChange(ctx, o.Repo, existing, p)
		if err != nil {
			return res, err
		}
		commit := existing
		if !same {
			commit = p.commit
			// kiln's branch is kiln's: it may be replaced, but only as
			// it was just seen (another kiln may be at it too).
			_, err := o.Repo.Push(ctx, o.Remote, commit, source, gitrepo.PushOptions{Lease: &existing})
			var rej *gitrepo.RejectedError
			if errors.As(err, &rej) && rej.Moved {
				if err := again(ctx, o, attempt, source, err); err != nil {
					return res, err
				}
				continue
			}
			if err != nil {
				return res, err
			}
			res.Pushed = true
		}
		res.Commit = commit
		var outcome forge.Outcome
		res.Request, outcome, err = forge.Ensure(ctx, f, forge.NewRequest{
			SourceBranch: source, TargetBranch: target,
			Title: c.Subject, Description: c.description(p, source, target),
		})
		res.Created, res.Updated = outcome == forge.Created, outcome == forge.Updated
		res.setRequest()
		return res, err
	}
}

func (r *Result) setRequest() {
	if r.Request != nil {
		r.URL, r.Number, r.State = r.Request.URL, r.Request.Number, r.Request.State
	}
}

// sameChange reports whether existing (a commit, or "") is the change p
// made: on the same tip, with the same tree.
func sameChange(ctx context.Context, r *gitrepo.Repo, existing string, p prepared) (bool, error) {
	if existing == "" {
		return false, nil
	}
	have, err := r.Inspect(ctx, existing)
	if err != nil {
		return false, err
	}
	want, err := r.Inspect(ctx, p.commit)
	if err != nil {
		return false, err
	}
	return have.Tree == want.Tree && len(have.Parents) == 1 && have.Parents[0] == p.tip, nil
}

// description is a request's description: what the change is about, and
// the diff against the target.
func (c Change) description(p prepared, source, target string) string {
	var b strings.Builder
	if c.About != "" {
		b.WriteString(strings.TrimSpace(c.About) + "\n\n")
	}
	fmt.Fprintf(&b, "Manifest `%s` of channel **%s**, against `%s` at %s:\n\n```diff\n", p.path, c.Channel, target, short(p.tip))
	manifest.FormatDiff(&b, p.changes)
	b.WriteString("```\n\n")
	fmt.Fprintf(&b, "_Opened by kiln. Running the same kiln command again updates branch `%s` and this description, and finds this request instead of opening another._\n", source)
	return b.String()
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
