// Command serve measures the download throughput and CPU of `kiln serve`
// against plain static file servers — nginx (Debian's nginx-light) and
// Python's http.server — serving the same file of the same tree on
// loopback, side by side: every round downloads the file from each server
// in turn (1 and 4 clients at once), and the report gives medians of
// throughput and of the server's CPU seconds per GiB sent, with ratios to
// nginx.
//
// Run it with scripts/bench-serve.sh; by hand:
//
//	go build -o /tmp/kiln ./cmd/kiln
//	go run ./bench/serve -kiln /tmp/kiln -out /tmp/serve.md
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kiln-images/kiln/internal/distribute"
	"github.com/kiln-images/kiln/internal/minisign"
)

type options struct {
	kiln    string
	size    int64
	reps    int
	clients []int
	out     string
}

func main() {
	var o options
	var clients string
	flag.StringVar(&o.kiln, "kiln", "", "kiln binary (required)")
	flag.Int64Var(&o.size, "size-mib", 1024, "size of the file served, MiB")
	flag.IntVar(&o.reps, "reps", 5, "rounds")
	flag.StringVar(&clients, "clients", "1,4", "concurrent downloads per measurement")
	flag.StringVar(&o.out, "out", "", "report file (default stdout)")
	flag.Parse()
	if o.kiln == "" {
		log.Fatal("-kiln is required")
	}
	for _, c := range strings.Split(clients, ",") {
		n, err := strconv.Atoi(c)
		if err != nil || n < 1 {
			log.Fatalf("-clients %q", clients)
		}
		o.clients = append(o.clients, n)
	}
	o.size <<= 20
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

// server is one server under test: its base URL and the processes whose
// CPU time counts.
type server struct {
	name string
	url  string
	cmd  *exec.Cmd
}

func run(o options) error {
	work, err := os.MkdirTemp("", "kiln-bench-serve-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755) // nginx's workers run as nobody
	tree, file, err := makeTree(work, o.size)
	if err != nil {
		return err
	}
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.cmd.Process.Signal(syscall.SIGTERM)
			s.cmd.Wait()
		}
	}()
	k, err := startKiln(o.kiln, work, tree)
	if err != nil {
		return err
	}
	servers = append(servers, k)
	if ng, err := startNginx(work, tree); err != nil {
		log.Printf("nginx: %v (skipped)", err)
	} else {
		servers = append(servers, ng)
	}
	py, err := startPython(tree)
	if err != nil {
		return err
	}
	servers = append(servers, py)

	// One untimed download from each: the file is in the page cache for
	// all, and kiln serve has checked it against the index (which it does
	// once per file and change, not per request).
	for _, s := range servers {
		if err := download(s.url+"/"+file, 1, o.size); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	type key struct {
		server  string
		clients int
	}
	tput := map[key][]float64{}   // MiB/s
	cpuPer := map[key][]float64{} // server CPU seconds per GiB
	for rep := range o.reps {
		for _, n := range o.clients {
			// Rotate who goes first, so no server always gets a warm cache.
			order := slices.Clone(servers)
			for range rep % len(order) {
				order = append(order[1:], order[0])
			}
			for _, s := range order {
				before, err := cpuTime(s.cmd.Process.Pid)
				if err != nil {
					return err
				}
				start := time.Now()
				if err := download(s.url+"/"+file, n, o.size); err != nil {
					return fmt.Errorf("%s: %w", s.name, err)
				}
				wall := time.Since(start)
				after, _ := cpuTime(s.cmd.Process.Pid)
				gib := float64(int64(n)*o.size) / (1 << 30)
				k := key{s.name, n}
				tput[k] = append(tput[k], float64(int64(n)*o.size)/(1<<20)/wall.Seconds())
				cpuPer[k] = append(cpuPer[k], (after-before).Seconds()/gib)
			}
		}
	}

	w := os.Stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	fmt.Fprintf(w, "One %d MiB file of random data, over HTTP on loopback (no TLS, so each server may use sendfile), from the page cache; %d rounds, servers in rotating order. Throughput is what the clients received; CPU is the server processes' user+system time per GiB sent (the clients' own CPU is not counted). Medians; ratios against nginx.\n\n", o.size>>20, o.reps)
	fmt.Fprintln(w, "| server | clients | throughput (MiB/s) | ratio | server CPU (s/GiB) | ratio |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, n := range o.clients {
		ref := key{"nginx", n}
		for _, s := range servers {
			k := key{s.name, n}
			tr, cr := "-", "-"
			if len(tput[ref]) > 0 {
				tr = fmt.Sprintf("%.2f", median(tput[k])/median(tput[ref]))
				cr = fmt.Sprintf("%.2f", median(cpuPer[k])/median(cpuPer[ref]))
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %s | %.3f | %s |\n", s.name, n, median(tput[k]), tr, median(cpuPer[k]), cr)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every round, per server and client count (MiB/s):")
	fmt.Fprintln(w)
	for _, n := range o.clients {
		for _, s := range servers {
			var xs []string
			for _, v := range tput[key{s.name, n}] {
				xs = append(xs, fmt.Sprintf("%.0f", v))
			}
			fmt.Fprintf(w, "- %s, %d client(s): %s\n", s.name, n, strings.Join(xs, ", "))
		}
	}
	return nil
}

// makeTree publishes one release whose qcow2 is size bytes of random
// data, and returns the tree and the file's path in it.
func makeTree(work string, size int64) (string, string, error) {
	src := filepath.Join(work, "disk.qcow2")
	f, err := os.Create(src)
	if err != nil {
		return "", "", err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		return "", "", err
	}
	f.Close()
	key, _ := minisign.GenerateKey(nil)
	tree := filepath.Join(work, "dist")
	pub := &distribute.Publisher{Store: &distribute.LocalStore{Dir: tree}, Project: "bench", Key: key}
	rel := distribute.Release{Channel: "latest", UseCase: "sandbox", Arch: "x86_64", Version: "1.0", AssetID: "kiln-bench",
		Created: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC), Files: []distribute.SourceFile{{Format: "qcow2", Source: distribute.Source{File: src}}}}
	if _, err := pub.Publish(context.Background(), []distribute.Release{rel}, true); err != nil {
		return "", "", err
	}
	filepath.Walk(tree, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			os.Chmod(p, fi.Mode()|0o444|map[bool]os.FileMode{true: 0o111}[fi.IsDir()])
		}
		return nil
	})
	return tree, "images/sandbox/x86_64/1.0/sandbox-x86_64-1.0.qcow2", nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitUp(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer", url)
}

func startKiln(bin, work, tree string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	key, _ := minisign.GenerateKey(nil)
	cfg := filepath.Join(work, "kiln.yaml")
	os.WriteFile(filepath.Join(work, "t.sh"), []byte("#!/bin/sh\n"), 0o755)
	yaml := fmt.Sprintf(`project: bench
regions: [local-a]
use_cases: {sandbox: {architectures: [x86_64], tests: [t.sh]}}
distribution:
  dir: %s
  public_key: %s
  rate_limit: {allow: [127.0.0.0/8]}
`, tree, key.Public())
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "-c", cfg, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: "kiln serve", url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	return s, waitUp(s.url + "/healthz")
}

func startNginx(work, tree string) (*server, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(work, "nginx")
	os.MkdirAll(dir, 0o755)
	conf := filepath.Join(dir, "nginx.conf")
	// The defaults of Debian's nginx for static files: sendfile, as many
	// workers as CPUs; no access log, as kiln serve logs nothing either.
	fmt.Fprintf(must(os.Create(conf)), `daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 1024; }
http {
  sendfile on;
  tcp_nopush on;
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  types { application/octet-stream qcow2; }
  server {
    listen 127.0.0.1:%[2]d;
    root %[3]s;
  }
}
`, dir, port, tree)
	cmd := exec.Command(bin, "-c", conf, "-p", dir)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: "nginx", url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	return s, waitUp(s.url + "/")
}

func startPython(tree string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", tree, strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{name: "python3 -m http.server", url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	return s, waitUp(s.url + "/")
}

func must[T any](v T, err error) T {
	if err != nil {
		log.Fatal(err)
	}
	return v
}

// download fetches url n times at once and checks each got size bytes.
func download(url string, n int, size int64) error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(url)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			got, err := io.CopyBuffer(io.Discard, resp.Body, make([]byte, 1<<20))
			if err == nil && (resp.StatusCode != 200 || got != size) {
				err = fmt.Errorf("%s: %d of %d bytes", resp.Status, got, size)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// cpuTime is the user+system time of a process and its descendants
// (nginx's workers), from /proc.
func cpuTime(pid int) (time.Duration, error) {
	pids := []int{pid}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p)); err == nil {
			f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
			if ppid, _ := strconv.Atoi(f[1]); ppid == pid {
				pids = append(pids, p)
			}
		}
	}
	var ticks int64
	for _, p := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			if p == pid {
				return 0, err
			}
			continue
		}
		f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + s
	}
	return time.Duration(ticks) * time.Second / 100, nil // USER_HZ
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
