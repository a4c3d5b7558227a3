package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// github is a repository on GitHub (REST API).
type github struct {
	c           *client
	owner, repo string
}

func (g *github) Name() string { return GitHub }

// pullRequest is the part of GitHub's pull request kiln reads.
type pullRequest struct {
	Number  int    `json:"number"`
	HTMLURL string `json:"html_url"`
	State   string `json:"state"`
	Title   string `json:"title"`
	Body    string `json:"body"`
	Head    struct {
		Ref string `json:"ref"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

func (p pullRequest) request() *Request {
	return &Request{Number: p.Number, URL: p.HTMLURL, State: p.State, SourceBranch: p.Head.Ref, TargetBranch: p.Base.Ref,
		Title: p.Title, Description: p.Body}
}

func (g *github) path(rest string) string {
	return "/repos/" + url.PathEscape(g.owner) + "/" + url.PathEscape(g.repo) + rest
}

func (g *github) FindOpen(ctx context.Context, source, target string) (*Request, error) {
	var prs []pullRequest
	// head is owner:branch; kiln's branches live in the repository itself.
	q := url.Values{"state": {"open"}, "head": {g.owner + ":" + source}, "base": {target}, "per_page": {"100"}}
	if err := g.c.do(ctx, http.MethodGet, g.path("/pulls"), q, nil, &prs); err != nil {
		return nil, err
	}
	for _, p := range prs {
		if p.Head.Ref == source && p.Base.Ref == target {
			return p.request(), nil
		}
	}
	return nil, nil
}

func (g *github) Open(ctx context.Context, nr NewRequest) (*Request, error) {
	body := map[string]any{
		"title": nr.Title,
		"head":  nr.SourceBranch,
		"base":  nr.TargetBranch,
		"body":  nr.Description,
	}
	var p pullRequest
	err := g.c.do(ctx, http.MethodPost, g.path("/pulls"), nil, body, &p)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity && strings.Contains(ae.Message, "already exists") {
		return nil, fmt.Errorf("%w: %w", ErrExists, err)
	}
	if err != nil {
		return nil, err
	}
	return p.request(), nil
}

func (g *github) Update(ctx context.Context, number int, title, description string) (*Request, error) {
	var p pullRequest
	body := map[string]any{"title": title, "body": description}
	if err := g.c.do(ctx, http.MethodPatch, g.path("/pulls/"+strconv.Itoa(number)), nil, body, &p); err != nil {
		return nil, err
	}
	return p.request(), nil
}
