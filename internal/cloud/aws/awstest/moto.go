package awstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Moto is a running moto_server.
type Moto struct {
	URL string

	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

// Launch starts moto_server on a free local port and waits until it
// answers. Moto starts with no default AMIs: tests make the images they
// need, and each region's first request after a reset stays fast.
func Launch(ctx context.Context) (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, fmt.Errorf("moto_server is not installed (not found in PATH): the aws backend's tests run against it; install moto with its server extra (pip install 'moto[server]'): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "MOTO_EC2_LOAD_DEFAULT_AMIS=false")
	// Its own process group, so Close also stops what a shim started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	m := &Moto{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { m.done <- cmd.Wait() }()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-m.done:
			return nil, fmt.Errorf("moto_server exited before answering (%v):\n%s", err, out.String())
		case <-ctx.Done():
			m.Close()
			return nil, ctx.Err()
		default:
		}
		if m.ping() == nil {
			return m, nil
		}
		if time.Now().After(deadline) {
			m.Close()
			return nil, fmt.Errorf("moto_server did not answer on %s within 60s:\n%s", m.URL, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartMoto launches moto for one test and stops it when the test ends. Tests
// that share one moto use RunMain instead.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	m, err := Launch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// RunMain runs a test binary's tests with one moto for all of them, set in
// *moto before they run. It returns the exit code for os.Exit; when moto
// cannot start, every test fails with the reason.
func RunMain(m *testing.M, moto **Moto) int {
	srv, err := Launch(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: cannot start moto for the aws backend tests:", err)
		return 1
	}
	if err := srv.Warm(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: moto does not answer:", err)
		srv.Close()
		return 1
	}
	*moto = srv
	code := m.Run()
	srv.Close()
	return code
}

func (m *Moto) ping() error {
	resp, err := http.Get(m.URL + "/moto-api/data.json")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// Warm sends one request to each service the backend uses. Moto loads a
// service's code on its first request, which takes seconds; after Warm no
// test pays for that inside its own timeouts.
func (m *Moto) Warm(ctx context.Context) error {
	calls := []struct {
		service, method, path, target, contentType, body string
	}{
		{"ec2", "POST", "/", "", "application/x-www-form-urlencoded", "Action=DescribeImages&Version=2016-11-15&Owner.1=self"},
		{"sts", "POST", "/", "", "application/x-www-form-urlencoded", "Action=GetCallerIdentity&Version=2011-06-15"},
		{"cloudformation", "POST", "/", "", "application/x-www-form-urlencoded", "Action=ListStacks&Version=2010-05-15"},
		{"ssm", "POST", "/", "AmazonSSM.DescribeParameters", "application/x-amz-json-1.1", "{}"},
		{"tagging", "POST", "/", "ResourceGroupsTaggingAPI_20170126.GetResources", "application/x-amz-json-1.1", "{}"},
		{"s3", "GET", "/", "", "", ""},
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	for _, c := range calls {
		req, err := http.NewRequestWithContext(ctx, c.method, m.URL+c.path, strings.NewReader(c.body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", scopeAuth("us-east-1", c.service))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		if c.target != "" {
			req.Header.Set("X-Amz-Target", c.target)
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("warm %s: %w", c.service, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("warm %s: %s", c.service, resp.Status)
		}
	}
	return nil
}

// Reset drops all state in moto: every test starts from an empty account.
func (m *Moto) Reset(t testing.TB) {
	t.Helper()
	resp, err := http.Post(m.URL+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset moto: %s", resp.Status)
	}
}

// Close stops moto and the processes it started.
func (m *Moto) Close() error {
	if m.cmd.Process == nil {
		return nil
	}
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
	return nil
}

// Output returns what moto printed, for failure messages.
func (m *Moto) Output() string { return m.out.String() }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("find a free port: not a TCP address")
	}
	return addr.Port, nil
}

// lockedBuffer collects a process's output from its copying goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 {
		b.buf.Reset() // keep the tail of a long run
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
