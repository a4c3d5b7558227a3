package forge

import (
	"fmt"
	"net/url"
	"strings"
)

// Remote is what a git remote's URL says about where a repository lives.
type Remote struct {
	Scheme  string // https, http, ssh or git
	Host    string // without port
	Port    string // the web port, only for http(s) remotes
	Project string // group/project or owner/repo: the path without "/" around it and without ".git"
}

// ParseRemote reads a git remote URL: scheme://[user@]host[:port]/path
// (https, http, ssh, git) or the scp-like [user@]host:path. Local paths
// and file:// URLs have no forge and are refused.
func ParseRemote(raw string) (Remote, error) {
	fail := func(why string) (Remote, error) {
		return Remote{}, fmt.Errorf("remote URL %s: %s", RedactURL(raw), why)
	}
	s := strings.TrimSpace(raw)
	if s == "" {
		return fail("empty")
	}
	var r Remote
	var path string
	if i := strings.Index(s, "://"); i >= 0 {
		u, err := url.Parse(s)
		if err != nil {
			return fail("not a URL")
		}
		switch u.Scheme {
		case "https", "http":
			r.Port = u.Port()
		case "ssh", "git", "git+ssh", "ssh+git":
			u.Scheme = "ssh"
			if strings.HasPrefix(s, "git://") {
				u.Scheme = "git"
			}
		case "file":
			return fail("a local repository has no forge")
		default:
			return fail(fmt.Sprintf("scheme %q is not one of https, http, ssh, git", u.Scheme))
		}
		r.Scheme, r.Host, path = u.Scheme, u.Hostname(), u.Path
	} else {
		// scp-like: [user@]host:path, where host has no '/' and the ':'
		// comes before any '/'.
		colon, slash := strings.IndexByte(s, ':'), strings.IndexByte(s, '/')
		if colon <= 0 || (slash >= 0 && slash < colon) {
			return fail("a local path has no forge")
		}
		host := s[:colon]
		if at := strings.LastIndexByte(host, '@'); at >= 0 {
			host = host[at+1:]
		}
		r.Scheme, r.Host, path = "ssh", host, s[colon+1:]
	}
	if r.Host == "" || strings.ContainsAny(r.Host, "@/ \t") {
		return fail("no host")
	}
	path = strings.Trim(path, "/")
	path = strings.TrimSuffix(path, ".git")
	path = strings.Trim(path, "/")
	if strings.HasPrefix(path, "~") {
		return fail("a path in a user's home directory names no forge project")
	}
	if path == "" || !strings.Contains(path, "/") || strings.Contains(path, "//") {
		return fail("the path names no project such as group/project")
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg == "." || seg == ".." || strings.ContainsAny(seg, " \t\r\n?#%") {
			return fail(fmt.Sprintf("path segment %q cannot be part of a project's path", seg))
		}
	}
	r.Project = path
	return r, nil
}

// Guess returns the forge a host is: GitHub when its name contains
// "github", GitLab when it contains "gitlab", else "".
func (r Remote) Guess() string {
	h := strings.ToLower(r.Host)
	switch {
	case strings.Contains(h, "github"):
		return GitHub
	case strings.Contains(h, "gitlab"):
		return GitLab
	}
	return ""
}

// APIURL returns the API root of a forge of kind on the remote's host:
// https://api.github.com for github.com, https://HOST/api/v3 for GitHub
// Enterprise, https://HOST/api/v4 for GitLab (http and the port when the
// remote itself is http(s) with them).
func (r Remote) APIURL(kind string) string {
	scheme, host := "https", r.Host
	if r.Scheme == "http" {
		scheme = "http"
	}
	if r.Port != "" {
		host += ":" + r.Port
	}
	switch kind {
	case GitHub:
		if strings.EqualFold(r.Host, "github.com") {
			return "https://api.github.com"
		}
		return scheme + "://" + host + "/api/v3"
	default:
		return scheme + "://" + host + "/api/v4"
	}
}

// RedactURL returns a remote URL fit for messages: without a password or
// token in its user part.
func RedactURL(raw string) string {
	if strings.Contains(raw, "://") {
		if u, err := url.Parse(raw); err == nil {
			if u.User != nil {
				// A password is a secret; so is a user name alone over
				// http(s), where it may be a token (https://TOKEN@host).
				if _, ok := u.User.Password(); ok {
					u.User = url.UserPassword(u.User.Username(), "REDACTED")
				} else if u.Scheme == "http" || u.Scheme == "https" {
					u.User = url.User("REDACTED")
				}
			}
			return u.String()
		}
		// Unparsable: hide everything between "://" and the last '@'.
		if i, at := strings.Index(raw, "://"), strings.LastIndexByte(raw, '@'); at > i {
			return raw[:i+3] + "REDACTED@" + raw[at+1:]
		}
	}
	return raw
}
