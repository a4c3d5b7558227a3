package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		remote, xff, want string
	}{
		{"192.0.2.1:5000", "", "192.0.2.1"},
		{"192.0.2.1:5000", "203.0.113.7", "192.0.2.1"},            // not a proxy: its header is ignored
		{"10.1.1.1:5000", "203.0.113.7", "203.0.113.7"},           // a proxy
		{"10.1.1.1:5000", "6.6.6.6, 203.0.113.7", "203.0.113.7"},  // the client wrote 6.6.6.6
		{"10.1.1.1:5000", "203.0.113.7, 10.2.2.2", "203.0.113.7"}, // two proxies
		{"10.1.1.1:5000", "garbage, 203.0.113.7", "203.0.113.7"},  // rightmost untrusted first
		{"10.1.1.1:5000", "203.0.113.7, garbage", "10.1.1.1"},     // malformed hop: trust nothing beyond
		{"10.1.1.1:5000", "", "10.1.1.1"},                         // a proxy without a header
		{"[::1]:5000", "2001:db8::5", "2001:db8::5"},              // IPv6
		{"[::ffff:192.0.2.9]:5000", "203.0.113.7", "192.0.2.9"},   // mapped IPv4
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := clientAddr(r, proxies).String(); got != tc.want {
			t.Errorf("%s with X-Forwarded-For %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func TestHandlerHeadersHealthAndPaths(t *testing.T) {
	s := New(Config{})
	s.Handle("GET /files/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }))
	failing := errors.New("no index yet")
	s.AddCheck("downloads", func(context.Context) error { return failing })
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()

	resp, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h HealthReport
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 503 || h.Status != "failing" || h.Checks["downloads"] != "no index yet" {
		t.Fatalf("health with a failing check: %s %+v", resp.Status, h)
	}
	failing = nil
	if resp, _ := http.Get(ts.URL + "/healthz"); resp.StatusCode != 200 {
		t.Fatalf("health: %s", resp.Status)
	}
	resp, _ = http.Get(ts.URL + "/files/a")
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	for _, p := range []string{"/files/../healthz", "/files/./a", "/files//a", "/files/a/..", "/x"} {
		req, _ := http.NewRequest("GET", ts.URL, nil)
		req.URL.Opaque = p
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
}

// Serve stops on its context and lets a request in flight finish.
func TestGracefulShutdown(t *testing.T) {
	s := New(Config{Addr: "127.0.0.1:0"})
	started := make(chan struct{})
	s.Handle("GET /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "done")
	}))
	ln, err := s.Listen()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.URL(ln), "http://127.0.0.1:") {
		t.Fatalf("URL %s", s.URL(ln))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx, ln) }()
	body := make(chan string)
	go func() {
		resp, err := http.Get(s.URL(ln) + "/slow")
		if err != nil {
			body <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		body <- string(b)
	}()
	<-started
	cancel()
	if got := <-body; got != "done" {
		t.Fatalf("request in flight got %q", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}
