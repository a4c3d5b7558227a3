package scale

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/kiln-images/kiln/internal/cloud"
)

// CountingBackend counts the calls made to the methods a scan uses. The
// local backend has no wire to count on, so its calls are counted here.
type CountingBackend struct {
	cloud.Backend

	mu sync.Mutex
	n  map[string]int
}

// NewCountingBackend wraps b.
func NewCountingBackend(b cloud.Backend) *CountingBackend {
	return &CountingBackend{Backend: b, n: map[string]int{}}
}

func (c *CountingBackend) count(method string) {
	c.mu.Lock()
	c.n[method]++
	c.mu.Unlock()
}

// Calls returns the counts by method name.
func (c *CountingBackend) Calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

func (c *CountingBackend) ListAssets(ctx context.Context, region string, f cloud.Filter) ([]cloud.Asset, error) {
	c.count("ListAssets")
	return c.Backend.ListAssets(ctx, region, f)
}

func (c *CountingBackend) ListImages(ctx context.Context, region string, f cloud.Filter) ([]cloud.Image, error) {
	c.count("ListImages")
	return c.Backend.ListImages(ctx, region, f)
}

func (c *CountingBackend) Image(ctx context.Context, region, id string) (cloud.Image, error) {
	c.count("Image")
	return c.Backend.Image(ctx, region, id)
}

func (c *CountingBackend) LaunchPermissions(ctx context.Context, region, id string) (cloud.LaunchPermissions, error) {
	c.count("LaunchPermissions")
	return c.Backend.LaunchPermissions(ctx, region, id)
}

// Syscalls runs bin under strace -f -c and returns the number of calls of
// each system call, to see what a command does to the local store's files.
func Syscalls(ctx context.Context, bin string, env []string, args ...string) (map[string]int, error) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		return nil, fmt.Errorf("strace is not installed (apt-get install strace): %w", err)
	}
	out, err := os.CreateTemp("", "kiln-strace-*")
	if err != nil {
		return nil, err
	}
	out.Close()
	defer os.Remove(out.Name())
	cmd := exec.CommandContext(ctx, strace, append([]string{"-f", "-c", "-o", out.Name(), bin}, args...)...)
	cmd.Env = env
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("strace %s: %w\n%s", bin, err, b)
	}
	f, err := os.Open(out.Name())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The summary table: % time, seconds, usecs/call, calls, [errors,] syscall.
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 || fs[len(fs)-1] == "total" || fs[len(fs)-1] == "syscall" {
			continue
		}
		if _, err := strconv.ParseFloat(fs[0], 64); err != nil {
			continue
		}
		if n, err := strconv.Atoi(fs[3]); err == nil {
			counts[fs[len(fs)-1]] = n
		}
	}
	return counts, sc.Err()
}

// TopCounts renders the n largest counts as "name=count, ...".
func TopCounts(m map[string]int, n int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	if len(keys) > n {
		keys = keys[:n]
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
