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

// gitlab is a project on GitLab (REST API v4).
type gitlab struct {
	c       *client
	project string // group/subgroup/project
}

func (g *gitlab) Name() string { return GitLab }

// mergeRequest is the part of GitLab's merge request kiln reads.
type mergeRequest struct {
	IID          int    `json:"iid"`
	WebURL       string `json:"web_url"`
	State        string `json:"state"`
	SourceBranch string `json:"source_branch"`
	TargetBranch string `json:"target_branch"`
	Title        string `json:"title"`
	Description  string `json:"description"`
}

func (m mergeRequest) request() *Request {
	return &Request{Number: m.IID, URL: m.WebURL, State: m.State, SourceBranch: m.SourceBranch, TargetBranch: m.TargetBranch,
		Title: m.Title, Description: m.Description}
}

// path is an API path of the project: GitLab takes the project's path as
// its id, URL-encoded as one segment (group%2Fproject).
func (g *gitlab) path(rest string) string {
	return "/projects/" + url.PathEscape(g.project) + rest
}

func (g *gitlab) FindOpen(ctx context.Context, source, target string) (*Request, error) {
	var mrs []mergeRequest
	q := url.Values{"state": {"opened"}, "source_branch": {source}, "target_branch": {target}}
	if err := g.c.do(ctx, http.MethodGet, g.path("/merge_requests"), q, nil, &mrs); err != nil {
		return nil, err
	}
	for _, m := range mrs {
		if m.SourceBranch == source && m.TargetBranch == target {
			return m.request(), nil
		}
	}
	return nil, nil
}

func (g *gitlab) Open(ctx context.Context, nr NewRequest) (*Request, error) {
	body := map[string]any{
		"source_branch": nr.SourceBranch,
		"target_branch": nr.TargetBranch,
		"title":         nr.Title,
		"description":   nr.Description,
		// kiln's branches carry one change each; once merged they are
		// of no further use.
		"remove_source_branch": true,
	}
	var m mergeRequest
	err := g.c.do(ctx, http.MethodPost, g.path("/merge_requests"), nil, body, &m)
	var ae *APIError
	if errors.As(err, &ae) && (ae.Status == http.StatusConflict ||
		(ae.Status == http.StatusUnprocessableEntity && strings.Contains(ae.Message, "already exists"))) {
		return nil, fmt.Errorf("%w: %w", ErrExists, err)
	}
	if err != nil {
		return nil, err
	}
	return m.request(), nil
}

func (g *gitlab) Update(ctx context.Context, number int, title, description string) (*Request, error) {
	var m mergeRequest
	body := map[string]any{"title": title, "description": description}
	if err := g.c.do(ctx, http.MethodPut, g.path("/merge_requests/"+strconv.Itoa(number)), nil, body, &m); err != nil {
		return nil, err
	}
	return m.request(), nil
}
