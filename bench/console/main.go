// Command console measures kiln serve's pages at scale: a local project
// of 16 regions and 20 use cases, every use case released to every region,
// and 1,000 runs in the journal (37 steps each, a boot console log each).
// It starts `kiln serve` (the binary), waits for its drift check, then
// requests every page and API document in interleaved rounds, first one
// request at a time, then from several clients at once, and reports the
// latency percentiles per page and the server's memory. Side by side, the
// commands that print the same documents run as processes, as a person
// without the console would run them.
//
// Run it with scripts/bench-console.sh; by hand:
//
//	go build -o /tmp/kiln ./cmd/kiln
//	go run ./bench/console -kiln /tmp/kiln -out /tmp/console.md
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kiln-images/kiln/bench/inventory/scale"
	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/report"
)

type options struct {
	kiln     string
	regions  int
	useCases int
	runs     int
	rounds   int
	clients  int
	cliReps  int
	out      string
	keep     bool
}

func main() {
	var o options
	flag.StringVar(&o.kiln, "kiln", "", "the kiln binary to measure (required)")
	flag.IntVar(&o.regions, "regions", 16, "local regions")
	flag.IntVar(&o.useCases, "use-cases", 20, "use cases, each released to every region")
	flag.IntVar(&o.runs, "runs", 1000, "runs in the journal")
	flag.IntVar(&o.rounds, "rounds", 200, "requests of each page, one at a time")
	flag.IntVar(&o.clients, "clients", 8, "clients at once in the concurrent pass (each makes -rounds/4 requests of each page)")
	flag.IntVar(&o.cliReps, "cli-reps", 5, "runs of each command")
	flag.StringVar(&o.out, "out", "", "write the report here (default stdout)")
	flag.BoolVar(&o.keep, "keep", false, "keep the project directory")
	flag.Parse()
	if o.kiln == "" {
		fmt.Fprintln(os.Stderr, "bench/console: -kiln is required")
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/console:", err)
		os.Exit(1)
	}
}

// tmpRoot is where the project lives: tmpfs where there is one, so that
// seeding 37,000 journaled steps (each fsynced) takes seconds; the pages
// read the journal through SQLite's cache either way.
func tmpRoot() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if f, err := os.CreateTemp("/dev/shm", "kiln-probe-"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return "/dev/shm"
		}
	}
	return ""
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp(tmpRoot(), "kiln-bench-console-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "project in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	start := time.Now()
	w, err := seed(ctx, dir, o)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	seeded := time.Since(start)
	fmt.Fprintf(os.Stderr, "seeded %d regions x %d use cases, %d runs (%d steps) in %s\n", o.regions, o.useCases, o.runs, w.steps, seeded.Round(time.Second))

	srv, err := startServer(ctx, o.kiln, w.cfgPath)
	if err != nil {
		return err
	}
	defer srv.stop()
	checkTook, err := srv.waitChecked()
	if err != nil {
		return err
	}
	idle, _ := srv.memory()

	pages := []string{"/", "/runs", fmt.Sprintf("/runs?page=%d", (o.runs+49)/50), "/runs/" + w.latest, "/runs/" + w.latest + "/console.log",
		"/drift", "/assets", "/schedule", "/api/v1/runs", "/api/v1/runs/" + w.latest, "/api/v1/manifests", "/api/v1/drift", "/api/v1/assets",
		"/api/v1/schedule", "/metrics"}
	sizes := map[string]int{}
	for _, p := range pages { // warm up, and check every page answers
		n, err := srv.get(p)
		if err != nil {
			return err
		}
		sizes[p] = n
	}
	seq, err := measure(srv, pages, o.rounds, 1)
	if err != nil {
		return err
	}
	conc, err := measure(srv, pages, max(o.rounds/4, 1), o.clients)
	if err != nil {
		return err
	}
	peak, rss := srv.memory()

	cli, err := commands(ctx, o, w)
	if err != nil {
		return err
	}

	var out io.Writer = os.Stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	writeReport(out, o, w, string(load), seeded, checkTook, pages, sizes, seq, conc, idle, peak, rss, cli)
	return nil
}

// world is the seeded project.
type world struct {
	cfgPath string
	latest  string // the newest run
	steps   int
}

func runID(t time.Time, k int) string {
	return fmt.Sprintf("kiln-%s-%06x", t.UTC().Format("20060102T150405Z"), k)
}

// seed writes the project, its store, its manifest and its journal.
func seed(ctx context.Context, dir string, o options) (*world, error) {
	regions, _ := scale.Regions("local", o.regions)
	useCases := scale.UseCases(o.useCases)
	path, err := scale.WriteProject(dir, "local", regions, useCases)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// Every use case on a schedule, so the schedule page has its jobs.
	data = regexp.MustCompile(`(?m)^    architectures: \[x86_64\]$`).ReplaceAll(data, []byte("    architectures: [x86_64]\n    schedule: \"0 3 * * *\""))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	w := &world{cfgPath: path}

	// Runs: one an hour, use cases in turn; the newest run of each use
	// case is the release in the manifest.
	base := time.Now().UTC().Add(-time.Duration(o.runs+1) * time.Hour).Truncate(time.Second)
	type runInfo struct {
		id      string
		useCase string
		created time.Time
		state   journal.RunState
	}
	runs := make([]runInfo, o.runs)
	released := map[string]runInfo{}
	for k := range runs {
		r := runInfo{id: runID(base.Add(time.Duration(k)*time.Hour), k), useCase: useCases[k%len(useCases)],
			created: base.Add(time.Duration(k) * time.Hour), state: journal.RunSucceeded}
		switch {
		case k >= o.runs-len(useCases): // the releases
		case k%25 == 7:
			r.state = journal.RunFailed
		case k%100 == 42:
			r.state = journal.RunRunning // interrupted
		}
		runs[k] = r
		if r.state == journal.RunSucceeded {
			released[r.useCase] = r
		}
		w.latest = r.id
	}

	ids, err := scale.SeedLocal(ctx, cfg, len(useCases), func(region string, i int) scale.ImageSpec {
		r := released[useCases[i]]
		return scale.ImageSpec{Name: useCases[i] + "-x86_64-1.0", Created: r.created, Public: true, Tags: map[string]string{
			cloud.TagManaged: "true", cloud.TagAssetID: r.id, cloud.TagUseCase: useCases[i], cloud.TagArch: "x86_64",
			cloud.TagVersion: "1.0", cloud.TagPhase: cloud.PhaseReplicate, cloud.TagTest: cloud.TestPassed, "deployment_name": "scale",
		}}
	})
	if err != nil {
		return nil, err
	}
	manifestPath, _ := cfg.ManifestPath("latest")
	if _, err := channel.Update(ctx, cfg, "latest", func(m manifest.Manifest) error {
		for region, list := range ids {
			for i, u := range useCases {
				m.Set(u, region, manifest.Entry{Architecture: "x86_64", ID: list[i], Name: u + "-x86_64-1.0", Public: true})
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}

	j, err := journal.Open(filepath.Join(cfg.StateDir(), "journal.db"))
	if err != nil {
		return nil, err
	}
	defer j.Close()
	logLine := make([]byte, 48)
	for _, r := range runs {
		if err := j.StartRun(ctx, journal.Run{ID: r.id, UseCase: r.useCase, Arch: "x86_64", Version: "1.0",
			Created: r.created, Updated: r.created, State: journal.RunRunning, Phase: cloud.PhaseBuild, Host: "bench"}); err != nil {
			return nil, err
		}
		step := func(phase, name, region, detail string, fail bool) error {
			id, err := j.Begin(ctx, r.id, phase, name, region, detail)
			if err != nil {
				return err
			}
			w.steps++
			var serr error
			if fail {
				serr = errors.New("tests failed: FAIL tests/boot.sh 1")
			}
			return j.End(ctx, id, "img-0123456789abcdef0", serr)
		}
		failed := r.state == journal.RunFailed
		steps := []func() error{
			func() error { return step(cloud.PhaseBuild, "build", regions[0], "", false) },
			func() error { return step(cloud.PhaseTest, "boot", regions[0], "", failed) },
		}
		if !failed {
			steps = append(steps, func() error { return step(cloud.PhaseTest, "record result", regions[0], "passed", false) })
			for _, region := range regions {
				steps = append(steps, func() error { return step(cloud.PhaseReplicate, "copy", region, "from img-0123456789abcdef0", false) })
			}
			for _, region := range regions {
				steps = append(steps, func() error { return step(cloud.PhasePublish, "launch permissions", region, "", false) })
			}
			steps = append(steps,
				func() error { return step(cloud.PhasePublish, "document", "", manifestPath, false) },
				func() error { return step(cloud.PhasePublish, "remove candidate", regions[0], "", false) })
		}
		if r.state == journal.RunRunning {
			steps = steps[:len(steps)/2] // interrupted half way
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return nil, err
			}
		}
		if r.state != journal.RunRunning {
			if err := j.SetRun(ctx, r.id, "", r.state); err != nil {
				return nil, err
			}
		}
		// A boot console of forty lines.
		var log strings.Builder
		for i := range 40 {
			rand.Read(logLine)
			fmt.Fprintf(&log, "[%8.3f] %x\r\n", float64(i)/7, logLine)
		}
		log.WriteString("KILN-TEST-RESULT: PASS\r\n")
		runDir := filepath.Join(cfg.StateDir(), "runs", r.id)
		if err := os.MkdirAll(runDir, 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(runDir, "test-console.log"), []byte(log.String()), 0o644); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// server is a kiln serve process.
type server struct {
	cmd    *exec.Cmd
	url    string
	client *http.Client
	done   chan struct{}
}

func startServer(ctx context.Context, kiln, cfgPath string) (*server, error) {
	cmd := exec.CommandContext(ctx, kiln, "serve", "-c", cfgPath, "--listen", "127.0.0.1:0", "--check-every", "0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, done: make(chan struct{}),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}}
	urls := make(chan string, 1)
	go func() {
		defer close(s.done)
		re := regexp.MustCompile(`kiln serve: (http://\S+) `)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		cmd.Wait()
	}()
	select {
	case s.url = <-urls:
		return s, nil
	case <-s.done:
		return nil, errors.New("kiln serve exited before it listened")
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		return nil, errors.New("kiln serve printed no URL within a minute")
	}
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(40 * time.Second):
		s.cmd.Process.Kill()
	}
}

// waitChecked waits for the server's first drift check and returns how
// long it took.
func (s *server) waitChecked() (time.Duration, error) {
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := s.client.Get(s.url + "/api/v1/status")
		if err == nil {
			var st report.ServeStatus
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if !st.Check.Ended.IsZero() {
				if st.Check.Error != "" {
					return 0, fmt.Errorf("the drift check failed: %s", st.Check.Error)
				}
				return st.Check.Ended.Sub(st.Check.Started), nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return 0, errors.New("no drift check within 10 minutes")
}

// get fetches a page to its end and returns its size.
func (s *server) get(path string) (int, error) {
	resp, err := s.client.Get(s.url + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return int(n), nil
}

// memory returns the server's peak and current resident memory (VmHWM,
// VmRSS), in bytes.
func (s *server) memory() (peak, rss int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			peak = kb << 10
		case "VmRSS:":
			rss = kb << 10
		}
	}
	return peak, rss
}

// measure requests every page rounds times from each of clients clients,
// interleaved (each round requests every page once, in turn), and
// returns each request's latency by page.
func measure(s *server, pages []string, rounds, clients int) (map[string][]time.Duration, error) {
	var mu sync.Mutex
	lat := map[string][]time.Duration{}
	var wg sync.WaitGroup
	errs := make([]error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				for i := range pages {
					p := pages[(i+r+c)%len(pages)] // rotate so no page always goes first
					t := time.Now()
					if _, err := s.get(p); err != nil {
						errs[c] = err
						return
					}
					d := time.Since(t)
					mu.Lock()
					lat[p] = append(lat[p], d)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return lat, errors.Join(errs...)
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// command is a command whose JSON document an API path serves.
type command struct {
	args []string
	api  string
	wall []time.Duration
}

// commands runs each command that prints a document the API serves, as a
// process, cliReps times, interleaved.
func commands(ctx context.Context, o options, w *world) ([]*command, error) {
	cs := []*command{
		{args: []string{"runs"}, api: "/api/v1/runs"},
		{args: []string{"runs", "--run", w.latest}, api: "/api/v1/runs/" + w.latest},
		{args: []string{"manifest", "show"}, api: "/api/v1/manifests"},
		{args: []string{"drift"}, api: "/api/v1/drift"},
		{args: []string{"assets"}, api: "/api/v1/assets"},
	}
	for range o.cliReps {
		for _, c := range cs {
			cmd := exec.CommandContext(ctx, o.kiln, append(c.args, "-o", "json", "-c", w.cfgPath)...)
			cmd.Stdout = io.Discard
			t := time.Now()
			if err := cmd.Run(); err != nil {
				return nil, fmt.Errorf("kiln %s: %w", strings.Join(c.args, " "), err)
			}
			c.wall = append(c.wall, time.Since(t))
		}
	}
	return cs, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func writeReport(out io.Writer, o options, w *world, load string, seeded, checkTook time.Duration, pages []string, sizes map[string]int,
	seq, conc map[string][]time.Duration, idle, peak, rss int64, cli []*command) {
	fmt.Fprintf(out, "`kiln serve` on a local project of %d regions x %d use cases (%d manifest entries) with %d runs (%d steps) in the journal; ",
		o.regions, o.useCases, o.regions*o.useCases, o.runs, w.steps)
	fmt.Fprintf(out, "%s, %s. Load average before: %s. Seeding took %s; the server's drift check and asset scan %s.\n\n",
		time.Now().UTC().Format("2006-01-02"), strings.TrimSpace(cpuModel()), strings.Join(strings.Fields(load)[:3], " "),
		seeded.Round(time.Second), checkTook.Round(time.Millisecond))
	fmt.Fprintf(out, "Latency of a whole response (request to last byte) over loopback, %d requests of each page one at a time, then %d clients at once (%d requests each); pages interleaved round by round:\n\n",
		o.rounds, o.clients, max(o.rounds/4, 1))
	fmt.Fprintln(out, "| page | size | p50 | p99 | p50, 8 at once | p99, 8 at once |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---:|")
	for _, p := range pages {
		name := strings.ReplaceAll(p, w.latest, "ID")
		fmt.Fprintf(out, "| `%s` | %s | %s | %s | %s | %s |\n", name, kib(sizes[p]),
			ms(percentile(seq[p], 0.5)), ms(percentile(seq[p], 0.99)), ms(percentile(conc[p], 0.5)), ms(percentile(conc[p], 0.99)))
	}
	fmt.Fprintf(out, "\nServer memory (resident): %s after the first check, %s after the load, %s at its peak.\n\n", mib(idle), mib(rss), mib(peak))
	fmt.Fprintf(out, "The same documents from the commands, each a process (median of %d, interleaved), against the page from the server (p50, one at a time):\n\n", o.cliReps)
	fmt.Fprintln(out, "| command | wall (median) | the API's document (p50) | command / API |")
	fmt.Fprintln(out, "|---|---:|---:|---:|")
	for _, c := range cli {
		cmdMed := percentile(c.wall, 0.5)
		api := percentile(seq[c.api], 0.5)
		name := strings.ReplaceAll(strings.Join(c.args, " "), w.latest, "ID")
		fmt.Fprintf(out, "| `kiln %s -o json` | %s | %s | %.0f |\n", name, ms(cmdMed), ms(api), float64(cmdMed)/float64(max(api, 1)))
	}
}

func kib(n int) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.0f KiB", float64(n)/1024)
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	n := 0
	model := ""
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			switch strings.TrimSpace(k) {
			case "processor":
				n++
			case "model name":
				model = strings.TrimSpace(v)
			}
		}
	}
	return fmt.Sprintf("%d x %s", n, model)
}
