package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/server"
)

// countingBackend counts every call that reaches the cloud.
type countingBackend struct {
	cloud.Backend
	n atomic.Int64
}

func (b *countingBackend) Account(ctx context.Context) (string, error) {
	b.n.Add(1)
	return b.Backend.Account(ctx)
}
func (b *countingBackend) ListImages(ctx context.Context, region string, f cloud.Filter) ([]cloud.Image, error) {
	b.n.Add(1)
	return b.Backend.ListImages(ctx, region, f)
}
func (b *countingBackend) Image(ctx context.Context, region, id string) (cloud.Image, error) {
	b.n.Add(1)
	return b.Backend.Image(ctx, region, id)
}
func (b *countingBackend) CopyImage(ctx context.Context, in cloud.CopyInput) (cloud.Image, error) {
	b.n.Add(1)
	return b.Backend.CopyImage(ctx, in)
}
func (b *countingBackend) WaitImage(ctx context.Context, region, id string) (cloud.Image, error) {
	b.n.Add(1)
	return b.Backend.WaitImage(ctx, region, id)
}
func (b *countingBackend) LaunchPermissions(ctx context.Context, region, id string) (cloud.LaunchPermissions, error) {
	b.n.Add(1)
	return b.Backend.LaunchPermissions(ctx, region, id)
}
func (b *countingBackend) SetLaunchPermissions(ctx context.Context, region, id string, p cloud.LaunchPermissions) error {
	b.n.Add(1)
	return b.Backend.SetLaunchPermissions(ctx, region, id, p)
}
func (b *countingBackend) SetDeprecation(ctx context.Context, region, id string, t time.Time) error {
	b.n.Add(1)
	return b.Backend.SetDeprecation(ctx, region, id, t)
}
func (b *countingBackend) TagImage(ctx context.Context, region, id string, tags map[string]string) error {
	b.n.Add(1)
	return b.Backend.TagImage(ctx, region, id, tags)
}
func (b *countingBackend) DeleteImage(ctx context.Context, region, id string) error {
	b.n.Add(1)
	return b.Backend.DeleteImage(ctx, region, id)
}
func (b *countingBackend) Build(ctx context.Context, in cloud.BuildInput) (cloud.Image, error) {
	b.n.Add(1)
	return b.Backend.Build(ctx, in)
}
func (b *countingBackend) TestImage(ctx context.Context, in cloud.TestInput) (cloud.TestResult, error) {
	b.n.Add(1)
	return b.Backend.TestImage(ctx, in)
}
func (b *countingBackend) ListAssets(ctx context.Context, region string, f cloud.Filter) ([]cloud.Asset, error) {
	b.n.Add(1)
	return b.Backend.ListAssets(ctx, region, f)
}
func (b *countingBackend) DeleteAsset(ctx context.Context, a cloud.Asset) error {
	b.n.Add(1)
	return b.Backend.DeleteAsset(ctx, a)
}

// servedConsole is kiln serve's console wired as runServe wires it, on a
// test server, with the project's backend counted.
type servedConsole struct {
	ts      *httptest.Server
	srv     *server.Server
	cs      *consoleServer
	backend *countingBackend
}

func serveConsole(t *testing.T, cfgPath string, o serveOptions) *servedConsole {
	return serveConsoleWith(t, cfgPath, o, nil)
}

// serveConsoleWith is serveConsole with setup called on the project and
// the console before they start.
func serveConsoleWith(t *testing.T, cfgPath string, o serveOptions, setup func(*project, *consoleServer)) *servedConsole {
	t.Helper()
	var errb syncBuffer
	g := &globalOptions{configPath: cfgPath, streams: &streams{in: strings.NewReader(""), out: io.Discard, err: &errb}}
	ctx, cancel := context.WithCancel(context.Background())
	p, err := g.openProject(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingBackend{Backend: p.backend}
	p.backend, p.pl.Backend = counting, counting
	srv := server.New(server.Config{})
	if o.warnBefore == 0 {
		o.warnBefore = config.Duration(14 * 24 * time.Hour)
	}
	cs, err := mountConsole(ctx, g, p, srv, o)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(p, cs)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); cs.Run(ctx) }()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		cancel()
		wg.Wait()
		cs.Close()
		p.Close()
	})
	s := &servedConsole{ts: ts, srv: srv, cs: cs, backend: counting}
	deadline := time.Now().Add(30 * time.Second)
	for cs.checks.Snapshot().Checks == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no drift check within 30s:\n%s", errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cs.checks.Snapshot().Err; err != nil {
		t.Fatalf("the server's drift check failed: %v", err)
	}
	return s
}

func (s *servedConsole) get(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(s.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// A page view never calls the cloud: every page and document is read from
// the journal, the manifests and the last drift check, which alone calls
// the backend.
func TestServePagesNeverCallTheCloud(t *testing.T) {
	w := newLocalWorld(t, 50)
	rel := w.release(t, "sandbox", "x86_64", "latest", time.Now().Add(-time.Hour))
	s := serveConsole(t, w.cfg, serveOptions{})
	after := s.backend.n.Load()
	if after == 0 {
		t.Fatal("the drift check made no call through the counted backend: the test counts nothing")
	}
	paths := []string{"/", "/channels/latest/history", "/runs", "/runs/" + rel.run, "/runs/" + rel.run + "/console.log",
		"/drift", "/assets", "/assets?run=" + rel.run, "/schedule", "/metrics", "/healthz",
		"/api/v1/status", "/api/v1/runs", "/api/v1/runs/" + rel.run, "/api/v1/manifests", "/api/v1/drift",
		"/api/v1/assets", "/api/v1/assets?run=" + rel.run, "/api/v1/schedule"}
	for range 3 {
		for _, p := range paths {
			code, body := s.get(t, p)
			if code != 200 {
				t.Errorf("%s: %d\n%s", p, code, body)
			}
		}
	}
	_, body := s.get(t, "/")
	for region, img := range rel.images {
		if !bytes.Contains(body, []byte(img.ID)) {
			t.Errorf("the channels page lacks %s's image %s", region, img.ID)
		}
	}
	if n := s.backend.n.Load(); n != after {
		t.Errorf("%d cloud calls from %d page views", n-after, 3*len(paths))
	}
	// A new check does call it, and the pages then show what it found.
	<-s.cs.checks.Trigger()
	if s.backend.n.Load() == after {
		t.Error("a triggered drift check made no cloud call")
	}
}

// The API's documents are byte for byte what the commands print with
// -o json on the same project.
func TestServeAPIIsTheCLI(t *testing.T) {
	w := newLocalWorld(t, 50)
	addSchedule(t, w.cfg, "0 3 * * *")
	rel := w.release(t, "sandbox", "x86_64", "latest", time.Now().Add(-time.Hour))
	w.release(t, "runner", "arm64", "stable", time.Now().Add(-30*time.Minute))
	s := serveConsole(t, w.cfg, serveOptions{})
	from := "2026-11-21T00:00:00Z"
	for _, c := range []struct {
		path string
		args []string
	}{
		{"/api/v1/runs", []string{"runs"}},
		{"/api/v1/runs/" + rel.run, []string{"runs", "--run", rel.run}},
		{"/api/v1/manifests", []string{"manifest", "show"}},
		{"/api/v1/manifests?channel=stable", []string{"manifest", "show", "--channel", "stable"}},
		{"/api/v1/schedule?count=4&from=" + from, []string{"schedule", "--count", "4", "--from", from}},
		{"/api/v1/drift", []string{"drift"}},
		{"/api/v1/assets", []string{"assets"}},
		{"/api/v1/assets?run=" + rel.run, []string{"assets", "--run", rel.run}},
	} {
		code, api := s.get(t, c.path)
		cli, stderr, exit := w.kiln(t, append(c.args, "-o", "json")...)
		if code != 200 || exit != 0 {
			t.Errorf("%s: HTTP %d; kiln %s: exit %d %s", c.path, code, strings.Join(c.args, " "), exit, stderr)
			continue
		}
		if !bytes.Equal(api, []byte(cli)) {
			t.Errorf("%s differs from kiln %s -o json:\nAPI:\n%s\nCLI:\n%s", c.path, strings.Join(c.args, " "), api, cli)
		}
	}
}

// kiln serve refuses what cannot work before it listens.
func TestServeFlags(t *testing.T) {
	w := newLocalWorld(t, 50)
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	open := filepath.Join(t.TempDir(), "open")
	os.WriteFile(open, []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	t.Setenv(serveTokenEnv, "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--token-file", short}, "--token-file goes with --allow-actions"},
		{[]string{"--allow-actions"}, "--allow-actions needs a token: --token-file FILE or $KILN_SERVE_TOKEN"},
		{[]string{"--allow-actions", "--token-file", short}, "at least 16"},
		{[]string{"--allow-actions", "--token-file", open}, "readable by other users (mode 0644)"},
		{[]string{"--channel", "stable"}, "--channel goes with --schedule"},
		{[]string{"--check-every", "10s"}, "--check-every 10s: give 0"},
		{[]string{"--schedule"}, "has a schedule"},
	} {
		_, stderr, code := w.kiln(t, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("kiln serve %s: exit %d, want 2 and %q:\n%s", strings.Join(c.args, " "), code, c.want, stderr)
		}
		if strings.Contains(stderr, "0123456789abcdef") {
			t.Errorf("the token is in the error: %s", stderr)
		}
	}
}

// schedClock is a scheduler's clock: the first sleep passes at once, the
// next lasts until the scheduler is stopped.
type schedClock struct {
	mu    sync.Mutex
	now   time.Time
	slept bool
}

func (c *schedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *schedClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	if !c.slept {
		c.slept, c.now = true, c.now.Add(d)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	<-ctx.Done()
	return ctx.Err()
}

// kiln serve --schedule runs the scheduled releases in the server: each
// shows on the schedule page, in the status document and in the metrics.
func TestServeRunsTheScheduler(t *testing.T) {
	w := newLocalWorld(t, 50)
	addSchedule(t, w.cfg, "0 3 * * *")
	clock := &schedClock{now: time.Date(2026, 11, 21, 2, 59, 30, 0, time.UTC)}
	s := serveConsoleWith(t, w.cfg, serveOptions{schedule: true, channel: "latest"}, func(p *project, cs *consoleServer) {
		p.pl.Backend = &fakeBuilder{Backend: w.store(t, time.Now())}
		cs.sched.Now, cs.sched.Sleep = clock.Now, clock.Sleep
	})
	deadline := time.Now().Add(60 * time.Second)
	var st report.ServeStatus
	for {
		_, body := s.get(t, "/api/v1/status")
		st = report.ServeStatus{}
		json.Unmarshal(body, &st)
		if st.Scheduler != nil && len(st.Scheduler.Releases) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the scheduler in the server did not run the 3 due releases: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, page := s.get(t, "/schedule")
	for _, r := range st.Scheduler.Releases {
		if r.Error != "" || r.RunID == "" || !r.Due.Equal(time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)) {
			t.Errorf("scheduled release %+v", r)
		}
		if !bytes.Contains(page, []byte(r.RunID)) {
			t.Errorf("the schedule page lacks run %s", r.RunID)
		}
	}
	if !bytes.Contains(page, []byte("This server runs the scheduled releases")) {
		t.Error("the schedule page does not say the server runs them")
	}
	_, m := s.get(t, "/metrics")
	for _, want := range []string{"kiln_scheduler_lag_seconds_count 3", `kiln_scheduled_releases_total{outcome="succeeded"} 3`,
		`kiln_last_release_timestamp_seconds{arch="x86_64",channel="latest",use_case="sandbox"}`} {
		if !bytes.Contains(m, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// post sends a JSON body with the bearer token and decodes the answer.
func (s *servedConsole) post(t *testing.T, path, token, body string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("POST", s.ts.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v\n%s", path, err, b)
		}
	}
	return resp.StatusCode
}

// With --allow-actions the API's actions run the commands' code: a
// release through the real pipeline (with the test builder) into latest,
// then its promotion to stable, gates first.
func TestServeActions(t *testing.T) {
	w := newLocalWorld(t, 50)
	token := "actions-token-0123456789"
	t.Setenv(serveTokenEnv, token)
	s := serveConsoleWith(t, w.cfg, serveOptions{allowActions: true}, func(p *project, cs *consoleServer) {
		p.pl.Backend = &fakeBuilder{Backend: w.store(t, time.Now())}
	})
	var started report.Runs
	if code := s.post(t, "/api/v1/releases", token, `{"use_case":"sandbox","channel":"latest"}`, &started); code != 202 || len(started.Runs) != 1 {
		t.Fatalf("release: %d %+v", code, started)
	}
	id := started.Runs[0].ID
	deadline := time.Now().Add(60 * time.Second)
	for {
		var rr report.Runs
		_, body := s.get(t, "/api/v1/runs/"+id)
		json.Unmarshal(body, &rr)
		if len(rr.Runs) == 1 && rr.Runs[0].State == "succeeded" {
			break
		}
		if time.Now().After(deadline) || (len(rr.Runs) == 1 && rr.Runs[0].State == "failed") {
			t.Fatalf("run %s did not succeed: %s", id, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var show report.ManifestShow
	_, body := s.get(t, "/api/v1/manifests?channel=latest")
	json.Unmarshal(body, &show)
	if len(show.Channels) != 1 || len(manifestDoc(t, show.Channels[0])["sandbox"]) != 3 {
		t.Fatalf("latest after the release: %s", body)
	}
	// An unknown use case is the client's error.
	if code := s.post(t, "/api/v1/releases", token, `{"use_case":"nope"}`, nil); code != 400 {
		t.Errorf("release of an unknown use case: %d", code)
	}

	var plan report.Promote
	if code := s.post(t, "/api/v1/promotions", token, `{"use_case":"sandbox","from":"latest","to":"stable"}`, &plan); code != 200 ||
		plan.Applied || !plan.Passed() || len(plan.Changes) != 3 {
		t.Fatalf("promotion plan: %d %+v", code, plan)
	}
	stable, _ := w.config(t).ManifestPath("stable")
	if _, err := os.Stat(stable); err == nil {
		t.Fatal("the plan wrote the stable manifest")
	}
	var done report.Promote
	if code := s.post(t, "/api/v1/promotions", token, `{"use_case":"sandbox","from":"latest","to":"stable","apply":true}`, &done); code != 200 || !done.Applied {
		t.Fatalf("promotion: %d %+v", code, done)
	}
	_, body = s.get(t, "/api/v1/manifests?channel=stable")
	show = report.ManifestShow{}
	json.Unmarshal(body, &show)
	if len(manifestDoc(t, show.Channels[0])["sandbox"]) != 3 {
		t.Fatalf("stable after the promotion: %s", body)
	}
	// The API's drift check sees the new release in both channels.
	var d report.Drift
	if code := s.post(t, "/api/v1/drift", token, "", &d); code != 200 || d.Summary.Checked != 6 || d.Summary.InSync != 6 {
		t.Fatalf("drift check: %d %+v", code, d.Summary)
	}
	if code := s.post(t, "/api/v1/drift", "not-the-token-at-all", "", nil); code != 401 {
		t.Errorf("drift check with a wrong token: %d", code)
	}
}

// manifestDoc decodes a channel's manifest document of kiln's own format:
// use case -> region -> entry.
func manifestDoc(t *testing.T, c report.ChannelManifest) map[string]map[string]any {
	t.Helper()
	var m map[string]map[string]any
	if err := json.Unmarshal(c.Manifest, &m); err != nil {
		t.Fatalf("%s: %v\n%s", c.Channel, err, c.Manifest)
	}
	return m
}
