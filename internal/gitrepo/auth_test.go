package gitrepo

import (
	"encoding/base64"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A push over http(s) carries the token as git's own smart HTTP server
// (git http-backend) sees it, and the token is in no git config file.
func TestHTTPAuthPush(t *testing.T) {
	w := newWorld(t)
	execPath, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	const token = "glpat-Secr3t-push-token"
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("oauth2:"+token))
	var mu sync.Mutex
	var seen []string
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(execPath)), "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Dir(w.origin), "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=kiln"},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, strings.Join(r.Header.Values("Authorization"), " | "))
		mu.Unlock()
		if a := r.Header.Values("Authorization"); len(a) != 1 || a[0] != want {
			rw.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(rw, "HTTP Basic: Access denied", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	remote := srv.URL + "/" + filepath.Base(w.origin)
	git(t, w.clone, "remote", "set-url", "origin", strings.Replace(remote, "http://", "http://gitlab-ci-token:read-only@", 1))

	// Without the token the remote refuses.
	plain := w.repo(t)
	if _, err := plain.Fetch(t.Context(), "origin", "main"); err == nil {
		t.Fatal("fetch without the token went through")
	}
	r, err := Open(t.Context(), w.clone, HTTPAuth(remote, "oauth2", token)...)
	if err != nil {
		t.Fatal(err)
	}
	tip, err := r.Fetch(t.Context(), "origin", "main")
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.CommitFile(t.Context(), tip, "proj/manifests/latest.json", []byte("{}\n{}\n"), "over http")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(t.Context(), "origin", c, "main", PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := git(t, w.origin, "rev-parse", "main"); got != c {
		t.Errorf("origin main = %s, want %s", got, c)
	}
	cfg, _ := os.ReadFile(filepath.Join(w.clone, ".git/config"))
	if strings.Contains(string(cfg), token) || strings.Contains(string(cfg), base64.StdEncoding.EncodeToString([]byte("oauth2:"+token))) {
		t.Error("the token is in .git/config")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 || seen[len(seen)-1] != want {
		t.Errorf("authorization headers seen: %q", seen)
	}
}

func TestHTTPAuthEnv(t *testing.T) {
	if env := HTTPAuth("git@gitlab.com:a/b.git", "oauth2", "t"); env != nil {
		t.Errorf("ssh remote: %q", env)
	}
	if env := HTTPAuth("https://gitlab.com/a/b.git", "oauth2", ""); env != nil {
		t.Errorf("no token: %q", env)
	}
	t.Setenv("GIT_CONFIG_COUNT", "2")
	env := HTTPAuth("https://user:pw@gitlab.example.com:8443/a/b.git", "oauth2", "t")
	want := []string{
		"GIT_CONFIG_COUNT=3",
		"GIT_CONFIG_KEY_2=http.https://gitlab.example.com:8443/.extraHeader",
		"GIT_CONFIG_VALUE_2=Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("oauth2:t")),
	}
	if strings.Join(env, "\n") != strings.Join(want, "\n") {
		t.Errorf("env %q, want %q", env, want)
	}
}
