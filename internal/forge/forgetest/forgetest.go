// Package forgetest serves the part of GitLab's and GitHub's REST APIs
// kiln uses, from httptest servers that check what the real forges check:
// the token in the header each expects, the project in the path as each
// spells it (GitLab: one URL-encoded segment, group%2Fproject), JSON bodies
// with the fields each requires, one open request per source branch
// (GitLab answers 409, GitHub 422), and faults on demand (401 for a wrong
// token, 5xx and 429 answers).
package forgetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Request is an open or closed request as the fake holds it.
type Request struct {
	Number             int
	Source, Target     string
	Title, Description string
	State              string // opened/open, merged, closed
	RemoveSourceBranch bool
}

// Call is one request the fake received, without its token.
type Call struct {
	Method, URI string
	Status      int
}

// server is what both fakes share.
type server struct {
	t      testing.TB
	srv    *httptest.Server
	token  string
	mu     sync.Mutex
	reqs   []*Request
	calls  []Call
	faults []int // statuses to answer the next requests with, in order
	lose   int   // answers to lose: the work is done, the answer is a 502
}

// Fail makes the next len(statuses) requests answer these statuses (500,
// 502, 429, ...) before any real work.
func (s *server) Fail(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, statuses...)
}

// LoseAnswers makes the next n requests do their work and then answer
// 502 Bad Gateway, as when a proxy loses the forge's answer: the client
// cannot know whether a request was opened.
func (s *server) LoseAnswers(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose += n
}

// Requests returns every request ever opened, in order.
func (s *server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = *r
	}
	return out
}

// find returns the request with number n (as the URL gives it), or nil.
func (s *server) find(n string) *Request {
	for _, r := range s.reqs {
		if fmt.Sprint(r.Number) == n {
			return r
		}
	}
	return nil
}

// Calls returns what the fake was asked, in order.
func (s *server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// SetState changes a request's state, as a person merging or closing it.
func (s *server) SetState(number int, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.reqs {
		if r.Number == number {
			r.State = state
			return
		}
	}
	s.t.Errorf("forgetest: no request %d", number)
}

// fault answers with the next queued fault, if any.
func (s *server) fault(w http.ResponseWriter) bool {
	if len(s.faults) == 0 {
		return false
	}
	status := s.faults[0]
	s.faults = s.faults[1:]
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "0")
	}
	writeJSON(w, status, map[string]any{"message": http.StatusText(status)})
	return true
}

// recorder notes the status a handler answered.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *server) start(t testing.TB, token string, h func(w http.ResponseWriter, r *http.Request)) {
	s.t, s.token = t, token
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rec := &recorder{ResponseWriter: w, status: 200}
		defer func() { s.calls = append(s.calls, Call{Method: r.Method, URI: r.RequestURI, Status: rec.status}) }()
		if s.fault(rec) {
			return
		}
		if s.lose > 0 {
			s.lose--
			h(&discard{header: http.Header{}}, r)
			writeJSON(rec, http.StatusBadGateway, map[string]any{"message": "502 Bad Gateway"})
			return
		}
		h(rec, r)
	}))
	t.Cleanup(s.srv.Close)
}

// discard is a ResponseWriter whose answer goes nowhere.
type discard struct{ header http.Header }

func (d *discard) Header() http.Header         { return d.header }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// decodeBody reads a JSON object body, as both forges require.
func decodeBody(r *http.Request) (map[string]any, error) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return nil, fmt.Errorf("content type %q is not application/json", ct)
	}
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("body: %v", err)
	}
	return body, nil
}

func str(body map[string]any, k string) string {
	s, _ := body[k].(string)
	return s
}
