package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/deploy/record"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/report"
)

// serveProcess starts `kiln serve` as a process on the project and returns
// it with its base URL once it listens.
func serveProcess(t *testing.T, cfg string, extra ...string) (*proc, string) {
	t.Helper()
	p := startKiln(t, nil, append([]string{"serve", "-c", cfg, "--listen", "127.0.0.1:0"}, extra...)...)
	re := regexp.MustCompile(`kiln serve: (https?://127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.stderr.String()); m != nil {
			return p, m[1]
		}
		if p.exited() {
			t.Fatalf("kiln serve exited %d:\n%s", p.code, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("kiln serve printed no URL:\n%s", p.stderr.String())
	return nil, ""
}

// waitChecked waits until the server's first drift check has ended.
func waitChecked(t *testing.T, url string) report.ServeStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/api/v1/status")
		if err == nil {
			var st report.ServeStatus
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if !st.Check.Ended.IsZero() {
				if st.Check.Error != "" {
					t.Fatalf("the server's drift check failed: %s", st.Check.Error)
				}
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no drift check ended within 30s (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// newBrowser starts headless Chromium (Debian's package) for the test.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed (make deps installs it): %v", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // as root
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// page is what a person sees of one page.
type page struct {
	text  string // the body's visible text
	forms int
}

// visit opens url, waits for the page, saves a screenshot as name.png in
// the test's artifact directory and returns what it shows.
func visit(t *testing.T, ctx context.Context, url, name string) page {
	t.Helper()
	var p page
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	p.text = browse(t, ctx, chromedp.Text(chromedp.CSS("body")))
	p.forms = browse(t, ctx, chromedp.Evaluate[int](`document.forms.length`))
	screenshot(t, ctx, name)
	return p
}

// browse runs a browser action that returns a value.
func browse[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// screenshot saves the whole page as name.png in the test's artifact
// directory (go test -artifacts keeps them).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png := browse(t, ctx, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(t.ArtifactDir(), name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// cell is the text of the channels page's card of a region in a use case.
func cell(t *testing.T, ctx context.Context, channel, key, region string) (class, text string) {
	t.Helper()
	sel := chromedp.CSS(fmt.Sprintf(`#channel-%s .usecase[data-key=%q] li[data-region=%q]`, channel, key, region))
	attr := browse(t, ctx, chromedp.AttributeValue(sel, "class"))
	if !attr.Exists {
		t.Fatalf("card %s has no class", sel)
	}
	return attr.Value, browse(t, ctx, chromedp.Text(sel))
}

// browserDeployments is dev for the console's deployments pages: its
// record is written by the test, its app served by the test.
const browserDeployments = `deployments:
  dev:
    image: {use_case: sandbox, channel: latest}
    units:
      web:
        process: {command: [/bin/true], ports: [http]}
    checks:
      - name: health
        http: {url: "{web.url.http}/health", body: "^ok"}
        count: 2
        interval: 1s
      - name: version
        http: {url: "{web.url.http}/version", json_field: version, equals: "{version}"}
`

// The console in a real browser: kiln serve (the binary) on a project
// with a completed local release; each page as a person sees it, no form
// and no write endpoint without --allow-actions; then with actions, an
// image made private behind kiln's back shows as drifted once a drift
// check started from the page has run.
func TestConsoleInBrowser(t *testing.T) {
	w := newLocalWorldYAML(t, fmt.Sprintf(localYAML, 50)+browserDeployments)
	git(t, w.dir, "init", "-q")
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "project")
	rel := w.release(t, "sandbox", "x86_64", "latest", time.Now().Add(-2*time.Hour))
	git(t, w.dir, "add", "-A")
	git(t, w.dir, "commit", "-qm", "latest: sandbox x86_64 (kiln run "+rel.run+")")
	_, steps, err := func() (journal.Run, []journal.Step, error) {
		j, err := journal.Open(journalPath(w.config(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer j.Close()
		return j.Run(t.Context(), rel.run)
	}()
	if err != nil {
		t.Fatal(err)
	}

	srv, url := serveProcess(t, w.cfg)
	waitChecked(t, url)
	ctx := newBrowser(t)

	// Channels: every region's image id, in sync.
	home := visit(t, ctx, url+"/", "01-channels")
	for _, region := range localRegions {
		class, text := cell(t, ctx, "latest", "sandbox", region)
		if !strings.Contains(text, rel.images[region].ID) || !strings.Contains(class, "in-sync") || !strings.Contains(text, "in sync") {
			t.Errorf("%s's card: class %q, text %q; want %s in sync", region, class, text, rel.images[region].ID)
		}
	}
	if !strings.Contains(home.text, "manifests/latest.json · history") {
		t.Errorf("no link to the manifest's history:\n%s", home.text)
	}
	hist := visit(t, ctx, url+"/channels/latest/history", "02-history")
	if !strings.Contains(hist.text, "latest: sandbox x86_64 (kiln run "+rel.run+")") {
		t.Errorf("history page lacks the release's commit:\n%s", hist.text)
	}

	// Runs and the run's timeline.
	runs := visit(t, ctx, url+"/runs", "03-runs")
	if !strings.Contains(runs.text, rel.run) || !strings.Contains(runs.text, "succeeded") {
		t.Errorf("runs page lacks the run:\n%s", runs.text)
	}
	run := visit(t, ctx, url+"/runs/"+rel.run, "04-run")
	phases := browse(t, ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("tbody.phase")].map(e => e.dataset.phase)`))
	rows := browse(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("table.timeline tr.step svg rect.span").length`))
	if strings.Join(phases, " ") != "build test replicate publish" || rows != len(steps) {
		t.Errorf("timeline: phases %v with %d bars; want build test replicate publish and a bar for each of the %d steps", phases, rows, len(steps))
	}
	for _, want := range []string{"KILN-TEST-RESULT: PASS", "Welcome to Debian", rel.images["local-c"].ID, "copy"} {
		if !strings.Contains(run.text, want) {
			t.Errorf("run page lacks %q:\n%s", want, run.text)
		}
	}
	drift := visit(t, ctx, url+"/drift", "05-drift")
	if !strings.Contains(drift.text, "Every entry matches the cloud") || !strings.Contains(drift.text, "Last drift check ended") {
		t.Errorf("drift page:\n%s", drift.text)
	}
	assets := visit(t, ctx, url+"/assets", "06-assets")
	if !strings.Contains(assets.text, rel.run) || !strings.Contains(assets.text, "deployment_name") {
		t.Errorf("assets page lacks the run or the cost tag:\n%s", assets.text)
	}
	sched := visit(t, ctx, url+"/schedule", "07-schedule")

	// Deployments: dev's record, as kiln deploy writes it, running the
	// release; the page reads it when asked.
	dev := record.New("dev", w.config(t).Project, "local-a", "000000000000")
	dev.State, dev.DeployedBy, dev.Run = record.StateDeployed, "e2e", rel.run
	dev.DeployedAt = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	dev.Release = &record.Release{ID: "r-" + rel.run, UseCase: "sandbox", Arch: "x86_64", Version: "1",
		ImageName: rel.images["local-a"].Name, Images: map[string]string{}, Channel: "latest", Manifest: "manifests/latest.json"}
	for _, region := range localRegions {
		dev.Release.Images[region] = rel.images[region].ID
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			io.WriteString(w, "ok\n")
		case "/version":
			io.WriteString(w, `{"version": "1"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer app.Close()
	dev.Outputs = map[string]string{"web.url.http": app.URL}
	dev.AddVerification(record.Verification{At: dev.DeployedAt.Add(time.Minute), Release: dev.Release.ID, Passed: true,
		Checks: []record.CheckResult{{Name: "health", Passed: true, Measurements: 3}}})
	if err := record.Save(w.dir, dev); err != nil {
		t.Fatal(err)
	}
	deps := visit(t, ctx, url+"/deployments", "08-deployments")
	row := browse(t, ctx, chromedp.Text(chromedp.CSS(`table.deployments tr[data-deployment="dev"]`)))
	for _, want := range []string{"deployed", "r-" + rel.run, "passed", "local-a"} {
		if !strings.Contains(row, want) {
			t.Errorf("deployments page: dev's row %q lacks %q", row, want)
		}
	}
	depPage := visit(t, ctx, url+"/deployments/dev", "09-deployment")
	for _, want := range []string{rel.images["local-b"].ID, rel.images["local-c"].ID, "channel latest", "health: passed, 3 measurements", rel.run} {
		if !strings.Contains(depPage.text, want) {
			t.Errorf("dev's page lacks %q:\n%s", want, depPage.text)
		}
	}

	// No form, no write endpoint.
	for name, p := range map[string]page{"channels": home, "history": hist, "runs": runs, "run": run, "drift": drift, "assets": assets,
		"schedule": sched, "deployments": deps, "deployment": depPage} {
		if p.forms != 0 {
			t.Errorf("the %s page has %d forms without --allow-actions", name, p.forms)
		}
	}
	for _, path := range []string{"/", "/runs", "/runs/" + rel.run, "/drift", "/assets", "/schedule", "/login", "/actions/release",
		"/actions/promote", "/actions/drift", "/api/v1/releases", "/api/v1/promotions", "/api/v1/drift", "/api/v1/runs", "/metrics",
		"/deployments", "/deployments/dev", "/api/v1/deployments", "/api/v1/deployments/dev", "/deployments/dev/verify",
		"/api/v1/deployments/dev/verifications"} {
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
			req, _ := http.NewRequest(method, url+path, strings.NewReader("{}"))
			req.Header.Set("Authorization", "Bearer anything-at-all-0123456789")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 && resp.StatusCode != 405 {
				t.Errorf("%s %s: %d without --allow-actions", method, path, resp.StatusCode)
			}
		}
	}

	// On a phone the channels and deployments pages fit the screen's width
	// (wide tables scroll inside their box).
	for _, pg := range []struct{ path, shot string }{{"/", "10-channels-phone"}, {"/deployments/dev", "11-deployment-phone"}} {
		if err := chromedp.Do(ctx, chromedp.Emulate(device.IPhone12), chromedp.Navigate(url+pg.path), chromedp.WaitVisible(chromedp.CSS("main"))); err != nil {
			t.Fatal(err)
		}
		overflow := browse(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		screenshot(t, ctx, pg.shot)
		if overflow {
			t.Errorf("%s is wider than a phone's screen", pg.path)
		}
	}
	if err := chromedp.Do(ctx, chromedp.EmulateReset(), chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatal(err)
	}

	srv.cmd.Process.Signal(syscall.SIGTERM)
	if code := srv.wait(); code != 0 || !strings.Contains(srv.stderr.String(), "kiln serve: stopped") {
		t.Fatalf("kiln serve after SIGTERM: exit %d\n%s", code, srv.stderr.String())
	}

	// With actions: log in with the token, make local-b private behind
	// kiln's back, run a drift check from the page, see it drifted.
	tokenFile := filepath.Join(t.TempDir(), "token")
	token := "e2e-token-0123456789abcdef"
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	srv, url = serveProcess(t, w.cfg, "--allow-actions", "--token-file", tokenFile)
	waitChecked(t, url)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url+"/login?next=/drift"),
		chromedp.WaitVisible(chromedp.CSS(`input[name=token]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=token]`), token),
		chromedp.Submit(chromedp.CSS(`input[name=token]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/actions/drift"] button`)),
	); err != nil {
		t.Fatalf("log in: %v\n%s", err, srv.stderr.String())
	}
	b := rel.images["local-b"]
	if err := w.store(t, time.Now()).SetLaunchPermissions(t.Context(), "local-b", b.ID, cloud.LaunchPermissions{}); err != nil {
		t.Fatal(err)
	}
	// The page shows the last check, not the cloud: still in sync.
	visit(t, ctx, url+"/", "09-before-check")
	if class, _ := cell(t, ctx, "latest", "sandbox", "local-b"); !strings.Contains(class, "in-sync") {
		t.Errorf("before a new check local-b shows %q: a page view read the cloud", class)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url+"/drift"),
		chromedp.Click(chromedp.CSS(`form[action="/actions/drift"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`table.findings tr.drift[data-region="local-b"]`)),
	); err != nil {
		t.Fatalf("run a drift check from the page: %v\n%s", err, srv.stderr.String())
	}
	visit(t, ctx, url+"/drift", "10-drift-after")
	home = visit(t, ctx, url+"/", "11-channels-drifted")
	class, text := cell(t, ctx, "latest", "sandbox", "local-b")
	if !strings.Contains(class, "drifted") || !strings.Contains(text, "drifted") || !strings.Contains(text, "public") {
		t.Errorf("local-b after the check: class %q text %q; want drifted (public)", class, text)
	}
	for _, region := range []string{"local-a", "local-c"} {
		if class, _ := cell(t, ctx, "latest", "sandbox", region); !strings.Contains(class, "in-sync") {
			t.Errorf("%s: %q, want in sync", region, class)
		}
	}
	if home.forms == 0 {
		t.Error("logged in with actions, the channels page has no form")
	}
	// Verify now on dev's page runs its checks against the app and shows
	// the outcome on top of its verifications.
	verifyNow := chromedp.CSS(`form[action="/deployments/dev/verify"] button`)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(url+"/deployments/dev"),
		chromedp.Click(verifyNow),
		chromedp.WaitVisible(chromedp.CSS(`table.verifications tbody tr:first-child .check:nth-child(2)`)),
	); err != nil {
		t.Fatalf("verify dev from its page: %v\n%s", err, srv.stderr.String())
	}
	latest := browse(t, ctx, chromedp.Text(chromedp.CSS(`table.verifications tbody tr:first-child`)))
	screenshot(t, ctx, "12-deployment-verified")
	if !strings.Contains(latest, "passed") || !strings.Contains(latest, "health: passed, 2 measurements") || !strings.Contains(latest, "version: passed") {
		t.Errorf("dev's latest verification after Verify now: %q", latest)
	}
	if rec, _, err := record.Load(w.dir, "dev"); err != nil || len(rec.Verifications) != 2 || !rec.Verifications[1].Passed || len(rec.Verifications[1].Checks) != 2 {
		t.Errorf("dev's record after Verify now: %v %+v", err, rec)
	} else if ev := rec.History[len(rec.History)-1]; ev.Action != "verify" || !strings.HasSuffix(ev.By, " via the console") {
		t.Errorf("dev's history after Verify now ends with %+v; want a verify by the server via the console", ev)
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if code := srv.wait(); code != 0 {
		t.Fatalf("kiln serve --allow-actions after SIGTERM: exit %d\n%s", code, srv.stderr.String())
	}
	if strings.Contains(srv.stderr.String(), token) {
		t.Error("the token is in the server's log")
	}
}
