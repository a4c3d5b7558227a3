package verify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock advances only when slept on, so intervals cost nothing.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return ctx.Err()
}

// server answers each request with the next of answers (the last one
// repeats); an answer of "hang" never answers, "close" drops the
// connection.
type server struct {
	*httptest.Server
	n atomic.Int32
}

type answer struct {
	status int
	body   string
}

func newServer(t *testing.T, answers ...answer) *server {
	s := &server{}
	release := make(chan struct{})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(s.n.Add(1)) - 1
		a := answers[min(i, len(answers)-1)]
		switch a.body {
		case "hang":
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		case "close":
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
			return
		}
		if got := r.Header.Get("Authorization"); got != "" && got != "Bearer secret-token" {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(a.status)
		fmt.Fprint(w, a.body)
	}))
	t.Cleanup(func() { close(release); s.Close() })
	return s
}

func versionCheck(url string, count, failureLimit int) Check {
	return Check{
		Name: "version", HTTP: &HTTP{URL: url + "/version", Status: 200, JSONField: "version", Equals: "1.2"},
		Interval: 5 * time.Second, Count: count, FailureLimit: failureLimit, ConsecutiveErrorLimit: 1, Timeout: 300 * time.Millisecond,
	}
}

func TestHTTPChecks(t *testing.T) {
	ok := answer{200, `{"version": "1.2", "build": {"n": 7}}`}
	wrong := answer{200, `{"version": "1.1"}`}
	for _, tc := range []struct {
		name         string
		answers      []answer
		check        func(url string) Check
		passed       bool
		measurements int
		detail       string
	}{
		{"all good", []answer{ok}, func(u string) Check { return versionCheck(u, 3, 0) }, true, 3, ""},
		{"wrong version", []answer{wrong}, func(u string) Check { return versionCheck(u, 3, 0) }, false, 1,
			`1 of 1 measurements failed (limit 0); last: GET URL/version: version is "1.1", want "1.2"`},
		// A flapping service: one failure is tolerated, two are not.
		{"flaps within the limit", []answer{ok, {500, "oops"}, ok, ok}, func(u string) Check { return versionCheck(u, 4, 1) }, true, 4, "status 500"},
		{"flaps beyond the limit", []answer{ok, {500, "oops"}, ok, {503, "down"}, ok}, func(u string) Check { return versionCheck(u, 5, 1) }, false, 4,
			"2 of 4 measurements failed (limit 1); last: GET URL/version: status 503, want 200"},
		// Errors are counted in a row: one is tolerated, two in a row are not.
		// An error is no measurement: it is taken again.
		{"one error", []answer{{0, "close"}, ok, ok}, func(u string) Check { return versionCheck(u, 3, 0) }, true, 4, "EOF"},
		{"errors alone never pass", nil, func(string) Check {
			c := versionCheck("http://127.0.0.1:1", 1, 0)
			c.ConsecutiveErrorLimit = 3
			return c
		}, false, 4, "4 measurements in a row errored (limit 3)"},
		{"hangs", []answer{{0, "hang"}}, func(u string) Check { return versionCheck(u, 5, 0) }, false, 2,
			"2 measurements in a row errored (limit 1); last: GET URL/version: no answer within 300ms"},
		{"not json", []answer{{200, "<html>"}}, func(u string) Check { return versionCheck(u, 1, 0) }, false, 1, "the answer is not JSON"},
		{"nested field", []answer{ok}, func(u string) Check {
			c := versionCheck(u, 1, 0)
			c.HTTP.JSONField, c.HTTP.Equals = "build.n", "7"
			return c
		}, true, 1, ""},
		{"body pattern", []answer{{200, "ok\n"}}, func(u string) Check {
			return Check{Name: "health", HTTP: &HTTP{URL: u + "/health", Status: 200, Body: regexp.MustCompile(`^ok`)}, Count: 1, Timeout: time.Second}
		}, true, 1, ""},
		{"body mismatch", []answer{{200, "degraded"}}, func(u string) Check {
			return Check{Name: "health", HTTP: &HTTP{URL: u + "/health", Status: 200, Body: regexp.MustCompile(`^ok`)}, Count: 1, Timeout: time.Second}
		}, false, 1, `the body does not match "^ok": "degraded"`},
		{"status other than 200", []answer{{204, ""}}, func(u string) Check {
			return Check{Name: "gone", HTTP: &HTTP{URL: u + "/x", Status: 204}, Count: 1, Timeout: time.Second}
		}, true, 1, ""},
		{"refused", nil, func(string) Check { return versionCheck("http://127.0.0.1:1", 2, 0) }, false, 2, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := "http://127.0.0.1:1"
			if tc.answers != nil {
				url = newServer(t, tc.answers...).URL
			}
			clock := &fakeClock{now: time.Unix(0, 0)}
			res, err := Runner{Clock: clock}.Run(t.Context(), []Check{tc.check(url)})
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			detail := strings.ReplaceAll(r.Detail, url, "URL")
			if r.Passed != tc.passed || r.Measurements != tc.measurements || !strings.Contains(detail, tc.detail) {
				t.Errorf("got passed=%v measurements=%d detail %q; want %v, %d, %q", r.Passed, r.Measurements, detail, tc.passed, tc.measurements, tc.detail)
			}
			// Measurements are Interval apart on the clock, and nothing
			// else waits on it.
			for _, d := range clock.slept {
				if d != 5*time.Second {
					t.Errorf("slept %s between measurements, want the interval", d)
				}
			}
		})
	}
}

// Secrets in headers work and never show in results.
func TestSecretsRedacted(t *testing.T) {
	s := newServer(t, answer{200, `{"version": "9"}`})
	c := versionCheck(s.URL+"/?token=secret-token", 1, 0)
	c.HTTP.Headers = map[string]string{"Authorization": "Bearer secret-token"}
	res, err := Runner{Clock: &fakeClock{}, Secrets: []string{"secret-token"}}.Run(t.Context(), []Check{c})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Passed || strings.Contains(res[0].Detail, "secret-token") || !strings.Contains(res[0].Detail, "[secret]") {
		t.Errorf("detail %q", res[0].Detail)
	}
}

func TestCommandChecks(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		cmd    []string
		passed bool
		detail string
	}{
		{"exits 0", []string{"sh", "-c", "test \"$WANT\" = yes"}, true, ""},
		{"exits 3", []string{"sh", "-c", "echo broken; exit 3"}, false, `sh exited with status 3: "broken"`},
		{"hangs", []string{"sleep", "10"}, false, "sleep did not finish within 200ms"},
		{"missing", []string{dir + "/nope"}, false, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Check{Name: tc.name, Command: tc.cmd, Env: []string{"WANT=yes", "PATH=/usr/bin:/bin"}, Dir: dir, Count: 1, Timeout: 200 * time.Millisecond}
			res, err := Runner{Clock: &fakeClock{}}.Run(t.Context(), []Check{c})
			if err != nil {
				t.Fatal(err)
			}
			if res[0].Passed != tc.passed || !strings.Contains(res[0].Detail, tc.detail) {
				t.Errorf("got %+v, want passed=%v detail %q", res[0], tc.passed, tc.detail)
			}
		})
	}
}

// A cancelled run stops with the context's error.
func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s := newServer(t, answer{200, `{"version": "1.2"}`})
	if _, err := (Runner{}).Run(ctx, []Check{versionCheck(s.URL, 3, 0)}); err == nil {
		t.Error("no error from a cancelled run")
	}
}
