// Package verify runs a deployment's checks: HTTP requests whose answers
// must have a status, a JSON field equal to a value (the deployed version
// or image id) or a body matching a pattern, and commands that must exit
// 0. Each check is measured Count times, Interval apart, and judged as
// Argo Rollouts judges an analysis run:
//
//   - a measurement succeeds, fails (an answer, but the wrong one) or
//     errors (no answer: refused, reset, timed out);
//   - the check fails as soon as more than FailureLimit measurements
//     failed, or more than ConsecutiveErrorLimit errored in a row;
//   - otherwise it passes once Count measurements succeeded or failed.
//     A measurement that errored is no measurement: it is tried again,
//     Interval later, so a check never passes on errors alone.
package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// Check is a check ready to run: placeholders filled in.
type Check struct {
	Name string
	// Exactly one of HTTP and Command is set.
	HTTP    *HTTP
	Command []string
	// Env and Dir are the command's environment and working directory.
	Env []string
	Dir string

	InitialDelay          time.Duration
	Interval              time.Duration
	Count                 int
	FailureLimit          int
	ConsecutiveErrorLimit int
	Timeout               time.Duration
}

// HTTP is a GET request and what its answer must be.
type HTTP struct {
	URL     string
	Headers map[string]string
	Status  int
	// JSONField, when set, names a field (dots for nesting) of the JSON
	// answer that must equal Equals, compared as text.
	JSONField string
	Equals    string
	// Body, when set, must match the answer's body.
	Body *regexp.Regexp
}

// Clock is time as the runner sees it; tests give a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the system's clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Runner runs checks.
type Runner struct {
	Client *http.Client // default: a client without its own timeout
	Clock  Clock        // default RealClock
	// Secrets are texts that must not appear in results (secret inputs
	// that went into URLs, headers or commands).
	Secrets []string
	// Measured, when set, is told of every measurement, for progress.
	Measured func(check string, n int, m Measurement)
}

// Outcome of one measurement.
type Outcome string

const (
	Success Outcome = "success"
	Failure Outcome = "failure"
	Error   Outcome = "error"
)

// Measurement is one measurement of a check.
type Measurement struct {
	Outcome Outcome
	Detail  string // what was seen, for failures and errors
}

// Result is a check's outcome.
type Result struct {
	Name   string
	Passed bool
	// Measurements counts the attempts, those that errored included.
	Measurements int
	Failures     int
	Errors       int
	// Detail says why it failed, or what the last failed or errored
	// measurement saw.
	Detail string
}

// Run runs the checks one after another and returns a result for each.
// It stops early only when ctx ends, with ctx's error.
func (r Runner) Run(ctx context.Context, checks []Check) ([]Result, error) {
	if r.Clock == nil {
		r.Clock = RealClock{}
	}
	if r.Client == nil {
		r.Client = &http.Client{}
	}
	var out []Result
	for _, c := range checks {
		res, err := r.run(ctx, c)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

func (r Runner) run(ctx context.Context, c Check) (Result, error) {
	res := Result{Name: c.Name}
	if c.Count < 1 {
		c.Count = 1
	}
	if c.InitialDelay > 0 {
		if err := r.Clock.Sleep(ctx, c.InitialDelay); err != nil {
			return res, err
		}
	}
	consecutive, taken := 0, 0
	for i := 0; taken < c.Count; i++ {
		if i > 0 {
			if err := r.Clock.Sleep(ctx, c.Interval); err != nil {
				return res, err
			}
		}
		m := r.measure(ctx, c)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		m.Detail = r.redact(m.Detail)
		if r.Measured != nil {
			r.Measured(c.Name, i+1, m)
		}
		res.Measurements++
		switch m.Outcome {
		case Success:
			consecutive = 0
			taken++
		case Failure:
			consecutive = 0
			taken++
			res.Failures++
			res.Detail = m.Detail
		case Error:
			consecutive++
			res.Errors++
			res.Detail = m.Detail
		}
		if res.Failures > c.FailureLimit {
			res.Detail = fmt.Sprintf("%d of %d measurements failed (limit %d); last: %s", res.Failures, res.Measurements, c.FailureLimit, res.Detail)
			return res, nil
		}
		if consecutive > c.ConsecutiveErrorLimit {
			res.Detail = fmt.Sprintf("%d measurements in a row errored (limit %d); last: %s", consecutive, c.ConsecutiveErrorLimit, res.Detail)
			return res, nil
		}
	}
	res.Passed = true
	return res, nil
}

func (r Runner) redact(s string) string {
	for _, secret := range r.Secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "[secret]")
		}
	}
	return s
}

func (r Runner) measure(ctx context.Context, c Check) Measurement {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	if c.HTTP != nil {
		return r.measureHTTP(ctx, c.HTTP, c.Timeout)
	}
	return measureCommand(ctx, c)
}

// maxBody bounds how much of an answer is read.
const maxBody = 1 << 20

func (r Runner) measureHTTP(ctx context.Context, h *HTTP, timeout time.Duration) Measurement {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.URL, nil)
	if err != nil {
		return Measurement{Error, err.Error()}
	}
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Measurement{Error, fmt.Sprintf("GET %s: no answer within %s", h.URL, timeout)}
		}
		return Measurement{Error, err.Error()}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Measurement{Error, fmt.Sprintf("GET %s: the body did not arrive within %s", h.URL, timeout)}
		}
		return Measurement{Error, fmt.Sprintf("GET %s: reading the body: %v", h.URL, err)}
	}
	if resp.StatusCode != h.Status {
		return Measurement{Failure, fmt.Sprintf("GET %s: status %d, want %d; body %s", h.URL, resp.StatusCode, h.Status, excerpt(body))}
	}
	if h.JSONField != "" {
		got, err := jsonField(body, h.JSONField)
		if err != nil {
			return Measurement{Failure, fmt.Sprintf("GET %s: %v; body %s", h.URL, err, excerpt(body))}
		}
		if got != h.Equals {
			return Measurement{Failure, fmt.Sprintf("GET %s: %s is %q, want %q", h.URL, h.JSONField, got, h.Equals)}
		}
	}
	if h.Body != nil && !h.Body.Match(body) {
		return Measurement{Failure, fmt.Sprintf("GET %s: the body does not match %q: %s", h.URL, h.Body, excerpt(body))}
	}
	return Measurement{Outcome: Success}
}

// jsonField returns the field at path (dots between names) of a JSON
// object, as text: strings as they are, other values as JSON.
func jsonField(body []byte, path string) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("the answer is not JSON: %v", err)
	}
	for _, name := range strings.Split(path, ".") {
		obj, ok := v.(map[string]any)
		if !ok {
			return "", fmt.Errorf("no field %s: not an object at %q", path, name)
		}
		if v, ok = obj[name]; !ok {
			return "", fmt.Errorf("no field %s", path)
		}
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	b, _ := json.Marshal(v)
	return string(b), nil
}

func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func measureCommand(ctx context.Context, c Check) Measurement {
	cmd := exec.CommandContext(ctx, c.Command[0], c.Command[1:]...)
	cmd.Env, cmd.Dir = c.Env, c.Dir
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return Measurement{Error, fmt.Sprintf("%s did not finish within %s", c.Command[0], c.Timeout)}
	case errors.As(err, &ee):
		return Measurement{Failure, fmt.Sprintf("%s exited with status %d: %s", c.Command[0], ee.ExitCode(), excerpt(lastLines(out)))}
	case err != nil:
		return Measurement{Error, err.Error()}
	}
	return Measurement{Outcome: Success}
}

func lastLines(b []byte) []byte {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	return bytes.Join(lines, []byte("\n"))
}
