package forge

import (
	"strings"
	"testing"
)

func TestParseRemote(t *testing.T) {
	for _, tt := range []struct {
		url    string
		want   Remote
		guess  string
		apiURL string
	}{
		{"git@gitlab.com:images/ci/runners.git", Remote{"ssh", "gitlab.com", "", "images/ci/runners"}, GitLab, "https://gitlab.com/api/v4"},
		{"https://gitlab.example.com/images/runners.git", Remote{"https", "gitlab.example.com", "", "images/runners"}, GitLab, "https://gitlab.example.com/api/v4"},
		{"https://oauth2:glpat-xyz@gitlab.example.com:8443/images/runners", Remote{"https", "gitlab.example.com", "8443", "images/runners"}, GitLab, "https://gitlab.example.com:8443/api/v4"},
		{"http://gitlab.local:8080/a/b.git/", Remote{"http", "gitlab.local", "8080", "a/b"}, GitLab, "http://gitlab.local:8080/api/v4"},
		{"ssh://git@gitlab.example.com:2222/images/runners.git", Remote{"ssh", "gitlab.example.com", "", "images/runners"}, GitLab, "https://gitlab.example.com/api/v4"},
		{"git@github.com:kiln-images/kiln.git", Remote{"ssh", "github.com", "", "kiln-images/kiln"}, GitHub, "https://api.github.com"},
		{"https://github.com/kiln-images/kiln", Remote{"https", "github.com", "", "kiln-images/kiln"}, GitHub, "https://api.github.com"},
		{"https://github.example.com/team/images.git", Remote{"https", "github.example.com", "", "team/images"}, GitHub, "https://github.example.com/api/v3"},
		{"git://git.example.com/team/images.git", Remote{"git", "git.example.com", "", "team/images"}, "", "https://git.example.com/api/v4"},
	} {
		got, err := ParseRemote(tt.url)
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.url, got, tt.want)
		}
		if g := got.Guess(); g != tt.guess {
			t.Errorf("%s: guessed %q, want %q", tt.url, g, tt.guess)
		}
		kind := tt.guess
		if kind == "" {
			kind = GitLab
		}
		if u := got.APIURL(kind); u != tt.apiURL {
			t.Errorf("%s: API %s, want %s", tt.url, u, tt.apiURL)
		}
	}
}

func TestParseRemoteRefuses(t *testing.T) {
	for _, tt := range []struct{ url, want string }{
		{"", "empty"},
		{"/srv/git/images.git", "local path"},
		{"../images", "local path"},
		{"file:///srv/git/images.git", "local repository"},
		{"https://gitlab.com/", "no project"},
		{"https://gitlab.com/onlyone.git", "no project"},
		{"git@host:~user/repo.git", "home directory"},
		{"https://gitlab.com/a/../b", `segment ".."`},
		{"ftp://host/a/b", `scheme "ftp"`},
		{"https://user:hunter2@gitlab.com/", "no project"},
	} {
		_, err := ParseRemote(tt.url)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v, want an error with %q", tt.url, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: the error shows the password: %v", tt.url, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://oauth2:glpat-xyz@gitlab.com/a/b.git": "https://oauth2:REDACTED@gitlab.com/a/b.git",
		"https://ghp_token123@github.com/a/b":         "https://REDACTED@github.com/a/b",
		"ssh://git@gitlab.com/a/b.git":                "ssh://git@gitlab.com/a/b.git",
		"git@gitlab.com:a/b.git":                      "git@gitlab.com:a/b.git",
		"https://gitlab.com/a/b.git":                  "https://gitlab.com/a/b.git",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseRemote: no input panics, and what is accepted is a host and a
// project path of at least two segments without ".git", "..", or a user
// part.
func FuzzParseRemote(f *testing.F) {
	for _, s := range []string{
		"git@gitlab.com:images/ci/runners.git", "https://oauth2:tok@gitlab.example.com:8443/a/b",
		"ssh://git@h:22/a/b.git", "file:///x", "/srv/x", "https://h/", "git@h:~u/r", "http://[::1]:80/a/b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRemote(s)
		if err != nil {
			return
		}
		if r.Host == "" || strings.ContainsAny(r.Host, "@/") {
			t.Fatalf("%q: host %q", s, r.Host)
		}
		segs := strings.Split(r.Project, "/")
		if len(segs) < 2 || strings.HasSuffix(r.Project, ".git") {
			t.Fatalf("%q: project %q", s, r.Project)
		}
		for _, seg := range segs {
			if seg == "" || seg == ".." || seg == "." {
				t.Fatalf("%q: project %q has segment %q", s, r.Project, seg)
			}
		}
		_ = r.APIURL(r.Guess())
	})
}
