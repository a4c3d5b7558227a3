package forge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Options configure a forge client.
type Options struct {
	// Type is GitLab or GitHub.
	Type string
	// APIURL is the API's root: https://gitlab.example.com/api/v4,
	// https://api.github.com, https://github.example.com/api/v3.
	APIURL string
	// Project is the project's path: group/project on GitLab (groups may
	// nest), owner/repo on GitHub.
	Project string
	// Token authenticates every request. It is sent in the header the
	// forge expects and nowhere else.
	Token string
	// HTTPClient sends the requests; nil means a client with a 30 s
	// timeout per request.
	HTTPClient *http.Client
	// UserAgent names the client (GitHub refuses requests without one);
	// default "kiln".
	UserAgent string
	Log       *slog.Logger // nil: discard
	// Attempts is how many times a request is sent when the forge answers
	// 429 or 5xx, or does not answer; default 4.
	Attempts int
	// Backoff is the first pause between attempts, doubling each time up
	// to a minute; default 1s. A Retry-After answer is honoured up to a
	// minute.
	Backoff time.Duration
}

// New returns the client of o.Type's API for o.Project.
func New(o Options) (Forge, error) {
	if o.Project == "" {
		return nil, errors.New("forge: no project")
	}
	base, err := url.Parse(strings.TrimRight(o.APIURL, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("forge: API URL %q is not an http(s) URL", o.APIURL)
	}
	if base.User != nil {
		return nil, errors.New("forge: the API URL may not hold credentials; give the token through forge.token_env")
	}
	c := &client{base: base, token: o.Token, http: o.HTTPClient, agent: o.UserAgent, log: o.Log, attempts: o.Attempts, backoff: o.Backoff}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.agent == "" {
		c.agent = "kiln"
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.attempts < 1 {
		c.attempts = 4
	}
	if c.backoff <= 0 {
		c.backoff = time.Second
	}
	switch o.Type {
	case GitLab:
		c.forge = "GitLab"
		c.header = func(h http.Header) { h.Set("PRIVATE-TOKEN", c.token) }
		return &gitlab{c: c, project: o.Project}, nil
	case GitHub:
		owner, repo, ok := strings.Cut(o.Project, "/")
		if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
			return nil, fmt.Errorf("forge: GitHub project %q is not owner/repo", o.Project)
		}
		c.forge = "GitHub"
		c.header = func(h http.Header) {
			h.Set("Authorization", "Bearer "+c.token)
			h.Set("Accept", "application/vnd.github+json")
			h.Set("X-GitHub-Api-Version", "2022-11-28")
		}
		return &github{c: c, owner: owner, repo: repo}, nil
	}
	return nil, fmt.Errorf("forge: unknown forge %q; allowed: %s, %s", o.Type, GitLab, GitHub)
}

// client is what both forges share: JSON over HTTP with the token in a
// header, retries of 429 and 5xx answers, and errors that never hold the
// token.
type client struct {
	forge    string // for messages: GitLab, GitHub
	base     *url.URL
	token    string
	header   func(http.Header)
	http     *http.Client
	agent    string
	log      *slog.Logger
	attempts int
	backoff  time.Duration
}

// maxBody bounds what is read of an answer.
const maxBody = 4 << 20

// APIError is an answer of the forge other than success.
type APIError struct {
	Forge   string // GitLab or GitHub
	Method  string
	Path    string // the API path, with its query
	Status  int
	Message string // the forge's own message, shortened
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s API: %s %s: %d %s", e.Forge, e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	switch e.Status {
	case http.StatusUnauthorized:
		msg += " (the token was refused: is it set, valid and unexpired?)"
	case http.StatusForbidden:
		msg += " (the token may not do this: GitLab needs the api scope and the Developer role, GitHub pull-requests and contents write access)"
	case http.StatusNotFound:
		msg += " (no such project, or the token cannot see it)"
	}
	return msg
}

// do sends a request with body (JSON-encoded unless nil) and decodes a
// successful answer into out (unless nil). Answers 429 and 5xx, and
// failures to get an answer, are retried with backoff.
func (c *client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	// path is escaped where it must be (GitLab's %2F), which url.Parse
	// keeps as the URL's raw path.
	u, err := url.Parse(strings.TrimRight(c.base.String(), "/") + path)
	if err != nil {
		return fmt.Errorf("%s API: %s %s: %w", c.forge, method, path, err)
	}
	u.RawQuery = query.Encode()
	shown := path
	if len(query) > 0 {
		shown += "?" + query.Encode()
	}
	var data []byte
	if body != nil {
		if data, err = json.Marshal(body); err != nil {
			return err
		}
	}
	pause := c.backoff
	for attempt := 1; ; attempt++ {
		err, retry, after := c.once(ctx, method, u.String(), shown, data, out)
		if err == nil || !retry || attempt >= c.attempts {
			return err
		}
		if after > 0 {
			pause = after
		}
		c.log.Warn("forge request failed; retrying", "forge", c.forge, "request", method+" "+shown, "attempt", attempt, "in", pause.String(), "error", err.Error())
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Minute)
	}
}

// once sends one request. retry says whether another attempt may succeed,
// after how long the forge asked to wait (0: not said).
func (c *client) once(ctx context.Context, method, target, shown string, data []byte, out any) (err error, retry bool, after time.Duration) {
	var rd io.Reader
	if data != nil {
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return err, false, 0
	}
	c.header(req.Header)
	req.Header.Set("User-Agent", c.agent)
	if data != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err(), false, 0
		}
		// Transport errors name the URL, which holds no secret.
		return fmt.Errorf("%s API: %s %s: %w", c.forge, method, shown, c.scrubErr(err)), true, 0
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%s API: %s %s: reading the answer: %w", c.forge, method, shown, err), true, 0
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Forge: c.forge, Method: method, Path: shown, Status: resp.StatusCode, Message: c.scrub(apiMessage(raw))}
		retry := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		return e, retry, retryAfter(resp.Header.Get("Retry-After"))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s API: %s %s: unexpected answer: %w", c.forge, method, shown, err), false, 0
		}
	}
	return nil, false, 0
}

// scrub removes the token from text a forge sent back.
func (c *client) scrub(s string) string {
	if c.token == "" {
		return s
	}
	return strings.ReplaceAll(s, c.token, "[REDACTED]")
}

func (c *client) scrubErr(err error) error {
	if c.token == "" || !strings.Contains(err.Error(), c.token) {
		return err
	}
	return errors.New(c.scrub(err.Error()))
}

// retryAfter reads a Retry-After header given in seconds, capped at a
// minute; 0 when absent or unreadable.
func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || s < 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, time.Minute)
}

// apiMessage extracts the human part of an error answer: GitLab's
// "message" (a string, a list, or fields with lists) or "error", GitHub's
// "message" and the messages of its "errors".
func apiMessage(raw []byte) string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return shorten(strings.TrimSpace(string(raw)))
	}
	var parts []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case string:
			parts = append(parts, prefix+x)
		case []any:
			for _, e := range x {
				walk(prefix, e)
			}
		case map[string]any:
			if _, ok := x["message"]; !ok && x["field"] != nil && x["code"] != nil {
				// GitHub's validation errors without a message.
				parts = append(parts, fmt.Sprintf("%s%v %v", prefix, x["field"], x["code"]))
				return
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				switch k {
				case "message", "error", "error_description":
					walk(prefix, x[k])
				case "errors":
					walk(prefix, x[k])
				case "documentation_url", "status", "resource", "code", "field":
				default:
					walk(prefix+k+" ", x[k])
				}
			}
		}
	}
	walk("", v)
	return shorten(strings.Join(parts, "; "))
}

func shorten(s string) string {
	const max = 300
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
