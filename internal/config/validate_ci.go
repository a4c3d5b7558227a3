package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

var (
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	remoteNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
)

// checkForge checks forge: what is given must be usable as it is; what is
// left out is found from the git remote when needed.
func (k *checker) checkForge() {
	f := k.c.Forge
	if f.Type != "" && f.Type != ForgeGitLab && f.Type != ForgeGitHub {
		k.errorf("forge.type", "unknown forge %q; allowed: gitlab, github (or leave it out to guess from the remote)", f.Type)
	}
	if !remoteNameRE.MatchString(f.Remote) {
		k.errorf("forge.remote", "invalid remote name %q; name a git remote such as origin", f.Remote)
	}
	if f.APIURL != "" {
		u, err := url.Parse(f.APIURL)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			k.errorf("forge.api_url", "%q is not an http(s) URL such as https://gitlab.example.com/api/v4", f.APIURL)
		case u.User != nil:
			k.errorf("forge.api_url", "the URL holds credentials; give the token through forge.token_env instead")
		}
	}
	if f.Project != "" {
		segs := strings.Split(f.Project, "/")
		bad := len(segs) < 2 || (f.Type == ForgeGitHub && len(segs) != 2)
		for _, s := range segs {
			bad = bad || s == "" || s == "." || s == ".." || strings.ContainsAny(s, " \t\r\n?#%")
		}
		if bad {
			k.errorf("forge.project", "invalid project %q; give group/project (GitLab, groups may nest) or owner/repo (GitHub)", f.Project)
		}
	}
	if f.TargetBranch != "" && !ValidBranch(f.TargetBranch) {
		k.errorf("forge.target_branch", "invalid branch name %q", f.TargetBranch)
	}
	if f.TokenEnv != "" && !envNameRE.MatchString(f.TokenEnv) {
		k.errorf("forge.token_env", "invalid environment variable name %q; the token itself never goes into kiln.yaml, only the name of the variable holding it, e.g. GITLAB_TOKEN", f.TokenEnv)
	}
}

// ValidBranch reports whether name is a branch name git accepts (the
// rules of git check-ref-format for refs/heads/NAME).
func ValidBranch(name string) bool {
	if name == "" || name == "@" || strings.HasPrefix(name, "-") || strings.HasPrefix(name, "/") ||
		strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") || strings.Contains(name, "..") ||
		strings.Contains(name, "//") || strings.Contains(name, "@{") || len(name) > 255 {
		return false
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || strings.ContainsRune(" ~^:?*[\\", c) {
			return false
		}
	}
	for seg := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(seg, ".") || strings.HasSuffix(seg, ".lock") {
			return false
		}
	}
	return true
}

// checkCI checks ci:.
func (k *checker) checkCI() {
	c := k.c.CI
	switch f := c.File; {
	case filepath.IsAbs(f):
		k.errorf("ci.file", "path %q must be relative to the config's directory", f)
	case !strings.HasSuffix(f, ".yml") && !strings.HasSuffix(f, ".yaml"):
		k.errorf("ci.file", "path %q must end in .yml or .yaml", f)
	}
	if strings.TrimSpace(c.Kiln) == "" || strings.ContainsAny(c.Kiln, "\r\n") {
		k.errorf("ci.kiln", "%q: give the command jobs run kiln with, on one line, e.g. kiln or ./bin/kiln", c.Kiln)
	}
	if strings.ContainsAny(c.Image, "\r\n \t") {
		k.errorf("ci.image", "%q is not an image name", c.Image)
	}
	k.checkList("ci.tags", c.Tags, func(t string) string {
		if strings.TrimSpace(t) == "" || strings.ContainsAny(t, "\r\n") {
			return fmt.Sprintf("%q is not a runner tag", t)
		}
		return ""
	})
	switch c.Document {
	case DocumentPush, DocumentMergeRequest, DocumentNone:
	default:
		k.errorf("ci.document", "unknown way %q; allowed: push, merge-request, none", c.Document)
	}
	if _, ok := k.c.Channels[c.ReleaseChannel]; !ok && len(k.c.Channels) > 0 {
		k.errorf("ci.release_channel", "channel %q is not defined; known: %s", c.ReleaseChannel, joinAnd(k.c.ChannelNames()))
	}
	for _, name := range sortedKeys(c.Channels) {
		p := joinPath("ci.channels", name)
		if _, ok := k.c.Channels[name]; !ok {
			k.keyErrorf(p, "channel %q is not defined; known: %s", name, joinAnd(k.c.ChannelNames()))
		}
		if w := c.Channels[name]; !slices.Contains([]string{RunAutomatic, RunManual}, w) {
			k.errorf(p, "%q: allowed: automatic, manual", w)
		}
	}
	if strings.ContainsAny(c.GitRefs, "\r\n'") || strings.HasPrefix(c.GitRefs, "-") {
		k.errorf("ci.git_refs", "%q is not a tag pattern such as v*", c.GitRefs)
	}
	if c.CleanupOlderThan < 0 {
		k.errorf("ci.cleanup_older_than", "%s is negative", c.CleanupOlderThan)
	}
}
