package forge_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/forge"
	"github.com/kiln-images/kiln/internal/forge/forgetest"
)

const token = "glpat-s3cr3t-T0ken-value"

// fake is what the tests need of either forge's test server.
type fake interface {
	URL() string
	Fail(statuses ...int)
	LoseAnswers(n int)
	Requests() []forgetest.Request
	Calls() []forgetest.Call
}

type forgeCase struct {
	name    string
	kind    string
	project string
	open    string // the state of an open request
	serve   func(t *testing.T) fake
}

var forges = []forgeCase{
	{"gitlab", forge.GitLab, "images/ci/runners", "opened", func(t *testing.T) fake { return forgetest.NewGitLab(t, "images/ci/runners", token) }},
	{"github", forge.GitHub, "images/runners", "open", func(t *testing.T) fake { return forgetest.NewGitHub(t, "images/runners", token) }},
}

func client(t *testing.T, fc forgeCase, srv fake, tok string) forge.Forge {
	t.Helper()
	f, err := forge.New(forge.Options{Type: fc.kind, APIURL: srv.URL(), Project: fc.project, Token: tok, Attempts: 4, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var nr = forge.NewRequest{
	SourceBranch: "kiln/latest/kiln-20261121T093012Z-7f3a9c",
	TargetBranch: "main",
	Title:        "latest: ci-runner x86_64 20261121.093012 (kiln run kiln-20261121T093012Z-7f3a9c)",
	Description:  "the diff\n\n```\n+ us-east-1\n```\n",
}

// A request is opened once; asking again finds it.
func TestEnsureOpensOnceThenFinds(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			srv := fc.serve(t)
			f := client(t, fc, srv, token)
			req, outcome, err := forge.Ensure(t.Context(), f, nr)
			if err != nil || outcome != forge.Created {
				t.Fatalf("first Ensure: %+v outcome=%v err=%v", req, outcome, err)
			}
			if req.Number != 1 || req.State != fc.open || req.SourceBranch != nr.SourceBranch || req.TargetBranch != "main" || !strings.HasSuffix(req.URL, "/1") {
				t.Errorf("opened %+v", req)
			}
			again, outcome, err := forge.Ensure(t.Context(), f, nr)
			if err != nil || outcome != forge.Found || again.Number != 1 || again.URL != req.URL {
				t.Fatalf("second Ensure: %+v outcome=%v err=%v", again, outcome, err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests opened, want 1", len(reqs))
			}
			if r := reqs[0]; r.Title != nr.Title || r.Description != nr.Description || r.Target != "main" {
				t.Errorf("the forge holds %+v", r)
			}
			// Opening directly while one is open is refused as "exists".
			if _, err := f.Open(t.Context(), nr); !errors.Is(err, forge.ErrExists) {
				t.Errorf("Open of a second: %v, want ErrExists", err)
			}
			// Another branch gets its own.
			other := nr
			other.SourceBranch = "kiln/latest/kiln-20261122T093012Z-000001"
			if r, outcome, err := forge.Ensure(t.Context(), f, other); err != nil || outcome != forge.Created || r.Number != 2 {
				t.Errorf("another branch: %+v %v %v", r, outcome, err)
			}
		})
	}
}

// A rerun whose change is now against a newer target finds the request
// open with the old description and sets it to the new one; the request
// stays the one that was opened.
func TestEnsureUpdatesDescription(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			srv := fc.serve(t)
			f := client(t, fc, srv, token)
			if _, _, err := forge.Ensure(t.Context(), f, nr); err != nil {
				t.Fatal(err)
			}
			newer := nr
			newer.Description = "the diff against main as it is now\n"
			req, outcome, err := forge.Ensure(t.Context(), f, newer)
			if err != nil || outcome != forge.Updated || req.Number != 1 || req.Description != newer.Description {
				t.Fatalf("Ensure with a new description: %+v outcome=%v err=%v", req, outcome, err)
			}
			if reqs := srv.Requests(); len(reqs) != 1 || reqs[0].Description != newer.Description || reqs[0].Title != nr.Title {
				t.Errorf("the forge holds %+v", reqs)
			}
			if _, outcome, err := forge.Ensure(t.Context(), f, newer); err != nil || outcome != forge.Found {
				t.Errorf("Ensure again: outcome=%v err=%v, want found", outcome, err)
			}
		})
	}
}

// The answer to the POST is lost after the forge opened the request: the
// retry is refused as "exists", and Ensure finds the one that was opened.
func TestEnsureLostAnswer(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			srv := fc.serve(t)
			f := client(t, fc, srv, token)
			// The lookup goes through; the POST's answer is lost.
			lookup := func() {
				if r, err := f.FindOpen(t.Context(), nr.SourceBranch, nr.TargetBranch); err != nil || r != nil {
					t.Fatalf("lookup before: %+v %v", r, err)
				}
			}
			lookup()
			srv.LoseAnswers(1)
			if _, err := f.Open(t.Context(), nr); !errors.Is(err, forge.ErrExists) {
				t.Fatalf("Open with a lost answer: %v; want the retry refused as exists", err)
			}
			req, outcome, err := forge.Ensure(t.Context(), f, nr)
			if err != nil || outcome != forge.Found || req.Number != 1 {
				t.Fatalf("Ensure after a lost answer: %+v %v %v", req, outcome, err)
			}
			if n := len(srv.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// 5xx and 429 answers are retried; a persistent one fails after the
// attempts, naming the status.
func TestRetries(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			srv := fc.serve(t)
			f := client(t, fc, srv, token)
			srv.Fail(http.StatusBadGateway, http.StatusTooManyRequests, http.StatusInternalServerError)
			req, outcome, err := forge.Ensure(t.Context(), f, nr)
			if err != nil || outcome != forge.Created || req.Number != 1 {
				t.Fatalf("Ensure through three faults: %+v %v %v", req, outcome, err)
			}
			var statuses []int
			for _, c := range srv.Calls() {
				statuses = append(statuses, c.Status)
			}
			if want := []int{502, 429, 500, 200, 201}; !slices.Equal(statuses, want) {
				t.Errorf("answers %v, want %v", statuses, want)
			}
			srv.Fail(503, 503, 503, 503, 503)
			_, err = f.FindOpen(t.Context(), nr.SourceBranch, "main")
			var ae *forge.APIError
			if !errors.As(err, &ae) || ae.Status != 503 {
				t.Fatalf("persistent 503: %v", err)
			}
			if n := len(srv.Calls()); n != 9 {
				t.Errorf("%d calls, want 9 (5 before, 4 attempts)", n)
			}
		})
	}
}

// A refused token fails at once, says so, and the token is nowhere in the
// error.
func TestUnauthorized(t *testing.T) {
	for _, fc := range forges {
		t.Run(fc.name, func(t *testing.T) {
			srv := fc.serve(t)
			f := client(t, fc, srv, "wrong-"+token)
			_, _, err := forge.Ensure(t.Context(), f, nr)
			var ae *forge.APIError
			if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
				t.Fatalf("wrong token: %v", err)
			}
			if !strings.Contains(err.Error(), "token was refused") || strings.Contains(err.Error(), token) {
				t.Errorf("error %q", err)
			}
			if n := len(srv.Calls()); n != 1 {
				t.Errorf("%d calls; a 401 is not retried", n)
			}
			if len(srv.Requests()) != 0 {
				t.Error("a request was opened with a wrong token")
			}
		})
	}
}

// A forge that echoes the token back (a misconfigured proxy) does not get
// it into kiln's errors.
func TestTokenScrubbed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"message":"bad header PRIVATE-TOKEN: ` + r.Header.Get("PRIVATE-TOKEN") + `"}`))
	}))
	defer srv.Close()
	f, err := forge.New(forge.Options{Type: forge.GitLab, APIURL: srv.URL + "/api/v4", Project: "a/b", Token: token})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.FindOpen(context.Background(), "x", "main")
	if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("error %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, o := range []forge.Options{
		{Type: "gitea", APIURL: "https://x/api", Project: "a/b"},
		{Type: forge.GitLab, APIURL: "ftp://x", Project: "a/b"},
		{Type: forge.GitLab, APIURL: "https://user:pw@x/api/v4", Project: "a/b"},
		{Type: forge.GitHub, APIURL: "https://api.github.com", Project: "a/b/c"},
		{Type: forge.GitHub, APIURL: "https://api.github.com", Project: ""},
	} {
		if _, err := forge.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}
