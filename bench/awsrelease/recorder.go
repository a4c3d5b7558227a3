package awsrelease

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
)

// Request is one request that passed through a Recorder.
type Request struct {
	// Start and End are when the request arrived and when its answer was
	// written, measured from the Recorder's start.
	Start, End time.Duration
	Service    string // SigV4 signing name: ec2, sts, ssm, ...
	Region     string
	Action     string // query Action, JSON target operation, or HTTP method
	Status     int
	Bytes      int64 // the request's body: what the client sent
}

// Recorder is an HTTP proxy in front of an AWS endpoint. It holds every
// request for a fixed latency before forwarding it, as a distant API
// endpoint would, and logs each one. It is safe for concurrent use.
type Recorder struct {
	target  string
	latency time.Duration
	client  *http.Client
	start   time.Time
	link    *link // nil: no bandwidth limit

	mu  sync.Mutex
	log []Request
}

// link is the client's uplink: request bodies go through it one after
// another at a fixed rate, as through a network interface of that speed.
type link struct {
	mu   sync.Mutex
	rate float64 // bytes per second
	free time.Time
}

// send waits until n bytes have gone through the link after everything
// queued before them.
func (l *link) send(ctx context.Context, n int64) error {
	l.mu.Lock()
	start := time.Now()
	if l.free.After(start) {
		start = l.free
	}
	l.free = start.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	done := l.free
	l.mu.Unlock()
	t := time.NewTimer(time.Until(done))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LimitBandwidth makes request bodies go through a link of bytesPerSecond
// (shared by all requests), before the latency.
func (rec *Recorder) LimitBandwidth(bytesPerSecond float64) {
	rec.link = &link{rate: bytesPerSecond}
}

// NewRecorder returns a recorder forwarding to target (a base URL) after
// latency. Serve it with net/http.
func NewRecorder(target string, latency time.Duration) *Recorder {
	return &Recorder{
		target:  strings.TrimRight(target, "/"),
		latency: latency,
		client:  &http.Client{Timeout: 2 * time.Minute},
		start:   time.Now(),
	}
}

// Len returns how many requests have been answered so far; with Since it
// cuts the log into the windows of processes run one after another.
func (rec *Recorder) Len() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.log)
}

// Since returns the requests answered after the first n, in the order
// their answers were written.
func (rec *Recorder) Since(n int) []Request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]Request(nil), rec.log[min(n, len(rec.log)):]...)
}

// Now is the recorder's clock, on the same scale as Request.Start.
func (rec *Recorder) Now() time.Duration { return time.Since(rec.start) }

func (rec *Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := Request{Start: rec.Now()}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req.Service, req.Region, req.Action = describe(r, body)
	req.Bytes = int64(len(body))
	// A presigned URL is fetched by the guest of an instance, from inside
	// AWS on a real run: not the tool's request, not logged.
	guest := r.URL.Query().Get("X-Amz-Signature") != ""
	defer func() {
		if guest {
			return
		}
		req.End = rec.Now()
		rec.mu.Lock()
		rec.log = append(rec.log, req)
		rec.mu.Unlock()
	}()

	if rec.link != nil && len(body) > 0 {
		if err := rec.link.send(r.Context(), int64(len(body))); err != nil {
			req.Status = 499
			return
		}
	}
	select {
	case <-time.After(rec.latency):
	case <-r.Context().Done():
		req.Status = 499 // the client gave up while the request was held
		return
	}
	req.Status = rec.forward(w, r, body)
}

// forward sends the request on and copies the answer back, returning its
// status.
func (rec *Recorder) forward(w http.ResponseWriter, r *http.Request, body []byte) int {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, rec.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway
	}
	out.Header = r.Header.Clone()
	out.ContentLength = int64(len(body))
	resp, err := rec.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway
	}
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(resp.StatusCode)
	w.Write(data)
	return resp.StatusCode
}

var scopeRE = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request`)

// describe reads what an AWS request asks for: the service and region from
// its SigV4 credential scope, the action from the JSON target header, the
// query protocol's Action parameter, or else the HTTP method.
func describe(r *http.Request, body []byte) (service, region, action string) {
	if m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		region, service = m[1], m[2]
	}
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		t := r.Header.Get("X-Amz-Target")
		action = t[strings.LastIndexByte(t, '.')+1:]
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		if f, err := url.ParseQuery(string(body)); err == nil {
			action = f.Get("Action")
		}
	}
	if service == "ebs" {
		action = awstest.EBSAction(r.Method, r.URL.Path)
	}
	if action == "" {
		action = r.Method
	}
	return service, region, action
}
