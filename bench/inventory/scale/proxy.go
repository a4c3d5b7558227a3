package scale

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Call is one kind of AWS request: the service and region it was signed for
// and the action it asks for.
type Call struct {
	Service, Region, Action string
}

// Counter is an HTTP proxy in front of an AWS endpoint that counts every
// request by Call. Point the SDK at URL.
type Counter struct {
	URL string

	target string
	client *http.Client
	srv    *http.Server

	mu     sync.Mutex
	counts map[Call]int
}

// StartCounter starts a counting proxy forwarding to target (a base URL).
func StartCounter(target string) (*Counter, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("counting proxy: %w", err)
	}
	c := &Counter{
		URL:    "http://" + l.Addr().String(),
		target: strings.TrimRight(target, "/"),
		client: &http.Client{Timeout: 10 * time.Minute},
		counts: map[Call]int{},
	}
	c.srv = &http.Server{Handler: c}
	go c.srv.Serve(l)
	return c, nil
}

// Close stops the proxy.
func (c *Counter) Close() error { return c.srv.Close() }

// Take returns the counts since the last Take and starts again from zero.
func (c *Counter) Take() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[Call]int{}
	return out
}

var scopeRE = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request`)

func (c *Counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var call Call
	if m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		call.Region, call.Service = m[1], m[2]
	}
	switch {
	case r.Header.Get("X-Amz-Target") != "":
		t := r.Header.Get("X-Amz-Target")
		call.Action = t[strings.LastIndexByte(t, '.')+1:]
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"):
		if f, err := url.ParseQuery(string(body)); err == nil {
			call.Action = f.Get("Action")
		}
	default:
		call.Action = r.Method
	}
	c.mu.Lock()
	c.counts[call]++
	c.mu.Unlock()

	req, err := http.NewRequestWithContext(r.Context(), r.Method, c.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	req.Header = r.Header.Clone()
	req.ContentLength = int64(len(body))
	resp, err := c.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// Counts are request counts by Call.
type Counts map[Call]int

// Total is the number of requests.
func (cs Counts) Total() int {
	n := 0
	for _, v := range cs {
		n += v
	}
	return n
}

// ByAction sums the counts per service:action over regions.
func (cs Counts) ByAction() map[string]int {
	out := map[string]int{}
	for k, v := range cs {
		out[k.Service+":"+k.Action] += v
	}
	return out
}

// String lists the counts per action, most first: "ec2:DescribeImages=16 ...".
func (cs Counts) String() string {
	by := cs.ByAction()
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if by[keys[i]] != by[keys[j]] {
			return by[keys[i]] > by[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, by[k])
	}
	return strings.Join(parts, " ")
}
