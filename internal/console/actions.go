package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/ratelimit"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/server"
)

// Actions exist only when the server was started with --allow-actions:
//
//	GET  /login, POST /login, POST /logout   a browser session from the token
//	GET  /promote                            the promotion form
//	POST /actions/release                    start a release (form)
//	POST /actions/promote                    check the gates, then promote (form)
//	POST /actions/drift                      run a drift check now (form)
//	POST /api/v1/releases                    start a release (bearer token)
//	POST /api/v1/promotions                  check the gates or promote (bearer token)
//	POST /api/v1/drift                       run a drift check now (bearer token)
//
// Forms need a session cookie, which the login gives for the token, and
// pass the server's CSRF guard; the API takes the token as a bearer
// credential on each request and sets no cookie. Failed attempts at the
// token are limited per client.

const (
	sessionCookie = "kiln_session"
	sessionTTL    = 12 * time.Hour
	maxSessions   = 1000
	authAttempts  = 20 // per client per authWindow
	authWindow    = time.Minute
	// checkWait is how long a drift check action waits for the check to
	// end before answering that it is still running; under the server's
	// write timeout.
	checkWait = 45 * time.Second
)

func (c *Console) mountActions(m Mounter) {
	// The login's own forms pass the CSRF guard without a session.
	login := func(pattern string, h http.HandlerFunc) {
		m.Handle(pattern, c.headers(c.csrf.Protect(h, c.session), "no-store"))
	}
	login("GET /login", c.loginPage)
	login("POST /login", c.login)
	login("POST /logout", c.logout)
	c.HandleForm(m, "GET /promote", c.promotePage)
	c.HandleForm(m, "POST /actions/release", c.releaseAction)
	c.HandleForm(m, "POST /actions/promote", c.promoteAction)
	c.HandleForm(m, "POST /actions/drift", c.driftAction)

	c.HandleAPI(m, "POST /api/v1/releases", c.apiRelease)
	c.HandleAPI(m, "POST /api/v1/promotions", c.apiPromote)
	c.HandleAPI(m, "POST /api/v1/drift", c.apiCheck)
}

// HandleForm mounts h, a form action (the console's or a section's),
// behind the login and the CSRF guard, never cached. Without actions it
// mounts nothing.
func (c *Console) HandleForm(m Mounter, pattern string, h http.HandlerFunc) {
	if c.o.Actions == nil {
		return
	}
	m.Handle(pattern, c.headers(c.csrf.Protect(c.requireSession(h), c.session), "no-store"))
}

// HandleAPI mounts h, a write endpoint (the console's or a section's),
// behind the bearer token, never cached. Without actions it mounts
// nothing.
func (c *Console) HandleAPI(m Mounter, pattern string, h http.HandlerFunc) {
	if c.o.Actions == nil {
		return
	}
	m.Handle(pattern, c.headers(c.requireBearer(h), "no-store"))
}

// FormToken returns the CSRF token a section's form must carry for r's
// session, and false when r has none (actions off, or not logged in):
// then the section shows no form.
func (c *Console) FormToken(r *http.Request) (string, bool) {
	s := c.session(r)
	if s == "" {
		return "", false
	}
	return c.csrf.Token(s), true
}

// Message writes the message page of an action's outcome (for a
// section's handlers too), with a link back.
func (c *Console) Message(w http.ResponseWriter, r *http.Request, status int, heading, text, link, linkText string) {
	c.render(w, r, status, "message", heading, message{Heading: heading, Text: text, Link: link, LinkText: linkText})
}

// tokenOK compares a presented token with the server's in constant time
// (hashing both first, so their lengths do not show either).
func (c *Console) tokenOK(presented string) bool {
	a := sha256.Sum256([]byte(presented))
	b := sha256.Sum256(c.o.Actions.Token)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// allowAttempt counts an attempt at the token from r's client.
func (c *Console) allowAttempt(w http.ResponseWriter, r *http.Request) bool {
	addr := server.Client(r)
	if !addr.IsValid() {
		return true
	}
	ok, retry := c.authLim.Allow(ratelimit.Key(addr), time.Now())
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		http.Error(w, "too many attempts at the token; try again later", http.StatusTooManyRequests)
	}
	return ok
}

func (c *Console) requireBearer(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !c.tokenOK(token) {
			if !c.allowAttempt(w, r) {
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="kiln"`)
			c.APIError(w, http.StatusUnauthorized, errors.New("this endpoint needs the server's token: Authorization: Bearer TOKEN"))
			return
		}
		h(w, r)
	}
}

func (c *Console) requireSession(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.session(r) == "" {
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		h(w, r)
	}
}

// sessions are the browser sessions that logged in with the token.
type sessions struct {
	ttl time.Duration
	max int

	mu     sync.Mutex
	expiry map[string]time.Time
}

func newSessions(ttl time.Duration, max int) *sessions {
	return &sessions{ttl: ttl, max: max, expiry: map[string]time.Time{}}
}

func (s *sessions) create(now time.Time) string {
	b := make([]byte, 32)
	rand.Read(b)
	id := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, exp := range s.expiry {
		if now.After(exp) {
			delete(s.expiry, k)
		}
	}
	if len(s.expiry) >= s.max { // drop the session closest to its end
		var oldest string
		for k, exp := range s.expiry {
			if oldest == "" || exp.Before(s.expiry[oldest]) {
				oldest = k
			}
		}
		delete(s.expiry, oldest)
	}
	s.expiry[id] = now.Add(s.ttl)
	return id
}

func (s *sessions) valid(id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.expiry[id]
	return ok && now.Before(exp)
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.expiry, id)
}

// session returns r's valid session id, or "".
func (c *Console) session(r *http.Request) string {
	if c.o.Actions == nil {
		return ""
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil || !c.sessions.valid(ck.Value, time.Now()) {
		return ""
	}
	return ck.Value
}

type loginPage struct {
	Next  string
	Error string
}

// safeNext is a local path to return to after the login, never another
// site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, "\\") {
		return "/"
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", "Log in", loginPage{Next: safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostForm.Get("next"))
	if !c.tokenOK(r.PostForm.Get("token")) {
		if !c.allowAttempt(w, r) {
			return
		}
		c.render(w, r, http.StatusUnauthorized, "login", "Log in", loginPage{Next: next, Error: "That is not the server's token."})
		return
	}
	id := c.sessions.create(time.Now())
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, Secure: c.o.SecureCookies, SameSite: http.SameSiteStrictMode})
	c.log.Info("console: logged in", "client", server.Client(r))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if s := c.session(r); s != "" {
		c.sessions.remove(s)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.o.SecureCookies, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// startRelease starts a release unless one the console started is still
// under way: one at a time keeps a mistaken double click from building
// twice.
func (c *Console) startRelease(ctx context.Context, useCase, arch, ch string) (string, error) {
	c.mu.Lock()
	if c.busy {
		c.mu.Unlock()
		return "", errBusy
	}
	c.busy = true
	c.mu.Unlock()
	done := func() {
		c.mu.Lock()
		c.busy = false
		c.mu.Unlock()
	}
	id, wait, err := c.o.Actions.Release(ctx, useCase, arch, ch)
	if err != nil {
		done()
		return "", err
	}
	go func() {
		defer done()
		if err := wait(); err != nil {
			c.log.Error("console: release failed", "run", id, "err", err)
			return
		}
		c.log.Info("console: release done", "run", id)
	}()
	return id, nil
}

var errBusy = errors.New("a release started from the console is still running; wait for it to end")

func (c *Console) releaseAction(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	useCase, arch, _ := strings.Cut(f.Get("use_case"), "/")
	id, err := c.startRelease(r.Context(), useCase, arch, f.Get("channel"))
	if err != nil {
		c.render(w, r, statusOf(err), "message", "Release", message{Heading: "The release did not start", Text: err.Error(), Link: "/", LinkText: "Back to the channels"})
		return
	}
	c.log.Info("console: release started", "run", id, "client", server.Client(r))
	http.Redirect(w, r, "/runs/"+id, http.StatusSeeOther)
}

// statusOf is the HTTP status of an action's error.
func statusOf(err error) int {
	var bad *BadInputError
	switch {
	case errors.Is(err, errBusy):
		return http.StatusConflict
	case errors.As(err, &bad):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// BadInputError is an action's error caused by what it was asked (an
// unknown use case or channel): the client's to fix.
type BadInputError struct{ Err error }

func (e *BadInputError) Error() string { return e.Err.Error() }
func (e *BadInputError) Unwrap() error { return e.Err }

type promotePage struct {
	UseCases []string
	Channels []string
	UseCase  string
	From, To string
	// Result is the gates' check (and, once applied, the promotion).
	Result *report.Promote
	Passed bool
	Error  string
}

func (c *Console) promoteForm(q url.Values) promotePage {
	p := promotePage{UseCases: c.o.Config.UseCaseNames(), Channels: c.o.Config.ChannelNames(),
		UseCase: q.Get("use_case"), From: q.Get("from"), To: q.Get("to")}
	if p.From == "" {
		p.From = "latest"
	}
	if p.To == "" {
		p.To = "stable"
	}
	return p
}

func (c *Console) promotePage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "promote", "Promote", c.promoteForm(r.URL.Query()))
}

// promoteAction checks the gates (apply unset), or promotes (apply=1),
// and shows the gates either way: a promotion is applied only from a page
// that showed them passing.
func (c *Console) promoteAction(w http.ResponseWriter, r *http.Request) {
	p := c.promoteForm(r.PostForm)
	apply := r.PostForm.Get("apply") == "1"
	rep, err := c.o.Actions.Promote(r.Context(), p.UseCase, p.From, p.To, apply)
	status := http.StatusOK
	if err != nil {
		status, p.Error = statusOf(err), err.Error()
	} else {
		p.Result, p.Passed = &rep, rep.Passed()
		if rep.Applied {
			c.log.Info("console: promoted", "use_case", p.UseCase, "from", p.From, "to", p.To, "client", server.Client(r))
		}
	}
	c.render(w, r, status, "promote", "Promote", p)
}

func (c *Console) driftAction(w http.ResponseWriter, r *http.Request) {
	done := c.o.Checks.Trigger()
	select {
	case <-done:
	case <-time.After(checkWait):
	case <-r.Context().Done():
		return
	}
	http.Redirect(w, r, "/drift", http.StatusSeeOther)
}

// maxBody bounds an API request's body.
const maxBody = 64 << 10

// decode reads an API request's JSON body into v, strictly.
func decode(r *http.Request, w http.ResponseWriter, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("the request has no body: send a JSON object")
		}
		return fmt.Errorf("the request's JSON: %w", err)
	}
	return nil
}

// ReleaseRequest is the body of POST /api/v1/releases.
type ReleaseRequest struct {
	UseCase string `json:"use_case"`
	Arch    string `json:"arch,omitempty"`
	Channel string `json:"channel,omitempty"` // default latest
}

func (c *Console) apiRelease(w http.ResponseWriter, r *http.Request) {
	var req ReleaseRequest
	if err := decode(r, w, &req); err != nil {
		c.APIError(w, http.StatusBadRequest, err)
		return
	}
	if req.Channel == "" {
		req.Channel = "latest"
	}
	id, err := c.startRelease(r.Context(), req.UseCase, req.Arch, req.Channel)
	if err != nil {
		c.APIError(w, statusOf(err), err)
		return
	}
	c.log.Info("console: release started", "run", id, "client", server.Client(r))
	run, steps, err := c.o.Journal.Run(r.Context(), id)
	if err != nil {
		c.APIError(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Location", "/api/v1/runs/"+id)
	c.WriteJSON(w, http.StatusAccepted, report.NewRuns([]journal.Run{run}, steps))
}

// PromoteRequest is the body of POST /api/v1/promotions.
type PromoteRequest struct {
	UseCase string `json:"use_case"`
	From    string `json:"from,omitempty"` // default latest
	To      string `json:"to,omitempty"`   // default stable
	Apply   bool   `json:"apply"`
}

func (c *Console) apiPromote(w http.ResponseWriter, r *http.Request) {
	var req PromoteRequest
	if err := decode(r, w, &req); err != nil {
		c.APIError(w, http.StatusBadRequest, err)
		return
	}
	if req.From == "" {
		req.From = "latest"
	}
	if req.To == "" {
		req.To = "stable"
	}
	rep, err := c.o.Actions.Promote(r.Context(), req.UseCase, req.From, req.To, req.Apply)
	if err != nil {
		c.APIError(w, statusOf(err), err)
		return
	}
	status := http.StatusOK
	if req.Apply && !rep.Applied {
		status = http.StatusConflict // a gate failed: nothing changed
	}
	c.WriteJSON(w, status, rep)
}

func (c *Console) apiCheck(w http.ResponseWriter, r *http.Request) {
	done := c.o.Checks.Trigger()
	select {
	case <-done:
	case <-time.After(checkWait):
		c.WriteJSON(w, http.StatusAccepted, c.status())
		return
	case <-r.Context().Done():
		return
	}
	s := c.o.Checks.Snapshot()
	if s.Err != nil || s.Result == nil {
		c.APIError(w, http.StatusBadGateway, fmt.Errorf("drift check: %v", s.Err))
		return
	}
	checked(w, s.LastSuccess)
	c.WriteJSON(w, http.StatusOK, s.Result.Drift)
}
