package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// A bounded load test of kiln serve on loopback: 20 clients, each from its
// own address of 127.0.0.0/8, make 150 requests at once against a budget
// of 100 per 5 minutes; an allow-listed address makes 400; one client
// resumes a started download 300 times; then 10000 distinct clients come
// through a trusted proxy against a server that remembers 1000. The
// budget holds exactly, the allow-list is never limited, resumptions are
// free, and the server's memory stays bounded.
func TestDownloadLoad(t *testing.T) {
	w := newDistWorld(t)
	data, _ := os.ReadFile(w.cfg)
	cfg := strings.Replace(string(data), "  tls_key: tls/key.pem\n", "  tls_key: tls/key.pem\n  trusted_proxies: [127.0.0.200/32]\n", 1)
	cfg = strings.Replace(cfg, "allow: [127.0.0.99/32]}", "allow: [127.0.0.99/32], max_clients: 1000}", 1)
	os.WriteFile(w.cfg, []byte(cfg), 0o600)
	w.release(t, "1.0", time.Date(2026, 11, 21, 9, 30, 12, 0, time.UTC))
	srv, url := w.serve(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.certPEM)
	client := func(src string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 8,
		}}
	}
	file := url + "/images/sandbox/x86_64/1.0/SHA256SUMS"
	do := func(c *http.Client, u string, hdr ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}

	start := time.Now()
	type tally struct{ ok, limited, other, badRetry int }
	results := make([]tally, 21)
	var wg sync.WaitGroup
	for i := range 21 {
		src, n := fmt.Sprintf("127.0.0.%d", 10+i), 150
		if i == 20 {
			src, n = "127.0.0.99", 400 // allow-listed
		}
		c := client(src)
		reqs := make(chan struct{}, n)
		for range n {
			reqs <- struct{}{}
		}
		close(reqs)
		var mu sync.Mutex
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range reqs {
					code, ra := do(c, file)
					mu.Lock()
					switch code {
					case 200:
						results[i].ok++
					case 429:
						results[i].limited++
						if s, err := strconv.Atoi(ra); err != nil || s < 1 {
							results[i].badRetry++
						}
					default:
						results[i].other++
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	for i, r := range results[:20] {
		if r.ok != 100 || r.limited != 50 || r.other != 0 || r.badRetry != 0 {
			t.Errorf("client 127.0.0.%d: %+v, want exactly 100 served and 50 refused with Retry-After", 10+i, r)
		}
	}
	if r := results[20]; r.ok != 400 {
		t.Errorf("allow-listed client: %+v, want all 400 served", r)
	}
	firstPhase := time.Since(start)

	// Resumptions of a started download are free.
	c := client("127.0.0.60")
	big := url + "/images/sandbox/x86_64/1.0/sandbox-x86_64-1.0.raw.gz"
	if code, _ := do(c, big, "Range", "bytes=0-99"); code != 206 {
		t.Fatalf("start of a download: %d", code)
	}
	for i := range 300 {
		if code, _ := do(c, big, "Range", fmt.Sprintf("bytes=%d-%d", 100+i, 100+i)); code != 206 {
			t.Fatalf("resumption %d: %d", i, code)
		}
	}
	served := 0
	for range 120 {
		if code, _ := do(c, file); code == 200 {
			served++
		}
	}
	if served != 99 {
		t.Errorf("after 300 resumptions, %d requests of the budget left, want 99", served)
	}

	// Many clients: memory stays bounded.
	rss := func() int {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.cmd.Process.Pid))
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
				n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				return n
			}
		}
		return 0
	}
	before := rss()
	proxy := client("127.0.0.200")
	var fwg sync.WaitGroup
	next := make(chan int, 100)
	go func() {
		for i := range 10000 {
			next <- i
		}
		close(next)
	}()
	for range 8 {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			for i := range next {
				if code, _ := do(proxy, file, "X-Forwarded-For", fmt.Sprintf("10.%d.%d.1", i>>8, i&0xff)); code != 200 {
					t.Errorf("client %d through the proxy: %d", i, code)
					return
				}
			}
		}()
	}
	fwg.Wait()
	after := rss()
	t.Logf("%d limited requests in %s; 10000 clients through a proxy: RSS %d kB -> %d kB", 20*150+400, firstPhase, before, after)
	if after-before > 50<<10 {
		t.Errorf("10000 clients grew the server by %d kB", after-before)
	}
	// The allow-list and the budget still hold after the flood.
	if code, _ := do(client("127.0.0.99"), file); code != 200 {
		t.Errorf("allow-listed after the flood: %d", code)
	}
}
