package scale

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Sample is one measured run of a variant.
type Sample struct {
	Wall  time.Duration
	CPU   time.Duration // of the measured process
	Calls int           // API calls (aws) or backend calls (local)
	Note  string        // what it did, e.g. its calls by action
}

// Variant is one thing measured: kiln, a baseline kiln, the minimal peer.
type Variant struct {
	Name string
	Run  func(ctx context.Context) (Sample, error)
}

// Interleave runs every variant reps times, round by round, rotating the
// order each round so that no variant always runs first (warmest or
// coldest) on a noisy machine.
func Interleave(ctx context.Context, reps int, vs []Variant, log io.Writer) (map[string][]Sample, error) {
	out := map[string][]Sample{}
	for round := range reps {
		for k := range vs {
			v := vs[(round+k)%len(vs)]
			s, err := v.Run(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s, round %d: %w", v.Name, round+1, err)
			}
			fmt.Fprintf(log, "round %d %-10s %8.3fs wall %8.3fs cpu %6d calls %s\n", round+1, v.Name, s.Wall.Seconds(), s.CPU.Seconds(), s.Calls, s.Note)
			out[v.Name] = append(out[v.Name], s)
		}
	}
	return out, nil
}

// Table renders the samples as a markdown table, each variant against the
// peer named peer: median, fastest and slowest wall time, median CPU time
// of the process, the calls of the median run, and the ratios of the
// medians to the peer's.
func Table(vs []Variant, samples map[string][]Sample, peer string) string {
	type stats struct {
		wall, min, max, cpu time.Duration
		calls               int
	}
	of := func(name string) stats {
		ss := samples[name]
		ws, cs := make([]time.Duration, len(ss)), make([]time.Duration, len(ss))
		calls := make([]int, len(ss))
		for i, s := range ss {
			ws[i], cs[i], calls[i] = s.Wall, s.CPU, s.Calls
		}
		slices.Sort(calls)
		return stats{Median(ws), slices.Min(ws), slices.Max(ws), Median(cs), calls[len(calls)/2]}
	}
	p := of(peer)
	var b strings.Builder
	b.WriteString("| variant | median wall | min | max | median CPU | calls | wall / peer | CPU / peer | calls / peer |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, v := range vs {
		s := of(v.Name)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %d | %.2f | %.2f | %.2f |\n", v.Name, Seconds(s.wall), Seconds(s.min), Seconds(s.max),
			Seconds(s.cpu), s.calls, s.wall.Seconds()/p.wall.Seconds(), s.cpu.Seconds()/p.cpu.Seconds(), float64(s.calls)/float64(p.calls))
	}
	return b.String()
}

// Env returns the environment without AWS settings, plus extra.
func Env(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// AWSEnv is the environment of a kiln process that talks to endpoint with
// static test credentials and no shared config (dir holds the empty files).
func AWSEnv(dir, endpoint string) ([]string, error) {
	cfg, creds := filepath.Join(dir, "aws-config"), filepath.Join(dir, "aws-credentials")
	for _, p := range []string{cfg, creds} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			return nil, err
		}
	}
	return Env("AWS_ENDPOINT_URL="+endpoint, "AWS_ACCESS_KEY_ID=bench", "AWS_SECRET_ACCESS_KEY=bench",
		"AWS_REGION=us-east-1", "AWS_CONFIG_FILE="+cfg, "AWS_SHARED_CREDENTIALS_FILE="+creds,
		"AWS_EC2_METADATA_DISABLED=true"), nil
}
