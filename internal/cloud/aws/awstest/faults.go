package awstest

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Faults is a proxy that makes the way to the backend's endpoint as rough
// as AWS can be: latency on every request, a fraction of requests answered
// with a throttling error or a bare 503 before they reach the server (so
// the request had no effect, as with a real throttle), and chosen calls
// failed outright. Its choices come from a seeded generator, so a run is
// reproducible up to the order in which concurrent requests arrive.
type Faults struct {
	URL string

	upstream // the endpoint behind the proxy

	mu       sync.Mutex
	rnd      *rand.Rand
	rate     float64
	latency  time.Duration
	rules    []*rule
	total    int
	injected int
}

// Rule matches calls to fail; empty fields match anything.
type Rule struct {
	Service, Region, Action string
	// Status and Code are the error to answer with, in the service's
	// protocol.
	Status int
	Code   string
	// Delay, instead of an error, holds the request this long before
	// forwarding it: a server that does not answer in time.
	Delay time.Duration
	// Times limits how often the rule fires; 0 means always.
	Times int
}

type rule struct {
	Rule
	fired int
}

// NewFaults starts a fault proxy in front of target, seeded with seed; it
// stops when the test ends. It injects nothing until told to.
func NewFaults(t testing.TB, target string, seed uint64) *Faults {
	f := &Faults{
		upstream: newUpstream(target, 120*time.Second),
		rnd:      rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// SetRate makes the proxy answer fraction (0..1) of requests with a
// throttling error or a bare 503, half each.
func (f *Faults) SetRate(fraction float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate = fraction
}

// SetLatency delays every request by d.
func (f *Faults) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// Fail adds a rule that fails matching calls.
func (f *Faults) Fail(r Rule) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = append(f.rules, &rule{Rule: r})
}

// Counts returns how many requests passed through and how many of them the
// proxy answered with an injected error.
func (f *Faults) Counts() (total, injected int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total, f.injected
}

type verdict int

const (
	pass verdict = iota
	throttle
	unavailable
	ruleFail
)

func (f *Faults) decide(c Call) (verdict, *rule, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total++
	for _, r := range f.rules {
		if (r.Service == "" || r.Service == c.Service) && (r.Region == "" || r.Region == c.Region) &&
			(r.Action == "" || r.Action == c.Action) && (r.Times == 0 || r.fired < r.Times) {
			r.fired++
			f.injected++
			return ruleFail, r, f.latency
		}
	}
	if f.rate > 0 && f.rnd.Float64() < f.rate {
		f.injected++
		if f.rnd.IntN(2) == 0 {
			return throttle, nil, f.latency
		}
		return unavailable, nil, f.latency
	}
	return pass, nil, f.latency
}

func (f *Faults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, body, err := readCall(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	v, rl, latency := f.decide(c)
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	switch v {
	case ruleFail:
		if rl.Delay > 0 {
			select {
			case <-time.After(rl.Delay):
			case <-r.Context().Done():
				return
			}
			break
		}
		writeError(w, c, rl.Status, rl.Code, "injected by awstest.Faults")
		return
	case throttle:
		code, status := throttleError(c)
		writeError(w, c, status, code, "Rate exceeded")
		return
	case unavailable:
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "Service Unavailable")
		return
	}
	f.forward(w, r, body, nil)
}

// throttleError is each protocol's throttling answer: EC2's
// RequestLimitExceeded comes with 503, the others' with 400 (S3: 503).
func throttleError(c Call) (string, int) {
	switch c.protocol() {
	case "ec2":
		return "RequestLimitExceeded", http.StatusServiceUnavailable
	case "rest-xml":
		return "SlowDown", http.StatusServiceUnavailable
	case "json":
		return "ThrottlingException", http.StatusBadRequest
	}
	return "Throttling", http.StatusBadRequest
}
