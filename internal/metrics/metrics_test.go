package metrics

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/refresh"
	"github.com/kiln-images/kiln/internal/report"
	"github.com/kiln-images/kiln/internal/schedule"
)

// scrape fetches /metrics as Prometheus does and parses it with
// Prometheus's text parser.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL, nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the text parser rejects the scrape: %v", err)
	}
	return fams
}

// value is the value of the sample of family name with labels.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestScrape(t *testing.T) {
	ctx := context.Background()
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	run := func(useCase string, state journal.RunState, steps ...[3]string) string {
		id := journal.NewAssetID(time.Now())
		if err := j.StartRun(ctx, journal.Run{ID: id, UseCase: useCase, Arch: "x86_64"}); err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			sid, _ := j.Begin(ctx, id, s[0], s[1], "local-a", s[2])
			var err error
			if s[1] == "boot" && state == journal.RunFailed {
				err = errors.New("tests failed")
			}
			j.End(ctx, sid, "", err)
		}
		j.SetRun(ctx, id, "", state)
		return id
	}
	run("web", journal.RunSucceeded, [3]string{"build", "build", ""}, [3]string{"test", "boot", ""},
		[3]string{"publish", "document", "/p/manifests/latest.json"})
	run("web", journal.RunFailed, [3]string{"build", "build", ""}, [3]string{"test", "boot", ""})

	snap := refresh.Snapshot{Checks: 1, Started: time.Now().Add(-2 * time.Second), Ended: time.Now(), LastSuccess: time.Now(),
		Result: &refresh.Result{
			Drift: report.NewDrift([]string{"latest"}, drift.Report{
				Summary: drift.Summary{Checked: 3, InSync: 2},
				Findings: []drift.Finding{
					{Kind: drift.Public, Severity: drift.SevDrift, Region: "local-b"},
					{Kind: drift.Orphan, Severity: drift.SevOrphan, Region: "local-a"},
					{Kind: drift.Orphan, Severity: drift.SevOrphan, Region: "local-c"},
				},
			}),
			Assets: report.NewAssets([]cloud.Asset{
				{Kind: cloud.KindImage, ID: "img-1", Region: "local-a"},
				{Kind: cloud.KindImage, ID: "img-2", Region: "local-a"},
				{Kind: cloud.KindBuild, ID: "b-1", Region: "local-a"},
			}),
		}}
	m := New(Options{
		Journal:      j,
		Snapshot:     func() refresh.Snapshot { return snap },
		DocumentStep: "document",
		Channel: func(p string) string {
			if p == "/p/manifests/latest.json" {
				return "latest"
			}
			return ""
		},
	})
	m.ObserveScheduled(schedule.Outcome{Due: time.Unix(1000, 0), Started: time.Unix(1090, 0), Ended: time.Unix(1200, 0)})
	m.ObserveScheduled(schedule.Outcome{Due: time.Unix(2000, 0), Started: time.Unix(2000, 0), Err: errors.New("x")})

	fams := scrape(t, m.Handler())
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kiln_runs", map[string]string{"state": "succeeded"}, 1},
		{"kiln_runs", map[string]string{"state": "failed"}, 1},
		{"kiln_runs", map[string]string{"state": "running"}, 0},
		{"kiln_phase_duration_seconds", map[string]string{"phase": "build", "outcome": "succeeded"}, 2},
		{"kiln_phase_duration_seconds", map[string]string{"phase": "test", "outcome": "failed"}, 1},
		{"kiln_phase_duration_seconds", map[string]string{"phase": "test", "outcome": "succeeded"}, 1},
		{"kiln_drift_findings", map[string]string{"kind": "public", "severity": "drift"}, 1},
		{"kiln_drift_findings", map[string]string{"kind": "orphan", "severity": "orphan"}, 2},
		{"kiln_drift_findings", map[string]string{"kind": "missing", "severity": "drift"}, 0},
		{"kiln_drift_entries_checked", nil, 3},
		{"kiln_drift_entries_in_sync", nil, 2},
		{"kiln_assets", map[string]string{"kind": "image", "region": "local-a"}, 2},
		{"kiln_assets", map[string]string{"kind": "build", "region": "local-a"}, 1},
		{"kiln_drift_check_success", nil, 1},
		{"kiln_scheduler_lag_seconds", nil, 2},
		{"kiln_scheduled_releases_total", map[string]string{"outcome": "succeeded"}, 1},
		{"kiln_scheduled_releases_total", map[string]string{"outcome": "failed"}, 1},
	} {
		got, ok := value(t, fams, c.name, c.labels)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	ts, ok := value(t, fams, "kiln_last_release_timestamp_seconds", map[string]string{"use_case": "web", "arch": "x86_64", "channel": "latest"})
	if !ok || time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last release time %v (present %v)", ts, ok)
	}
	lag := fams["kiln_scheduler_lag_seconds"].Metric[0].Histogram
	if lag.GetSampleSum() != 90 {
		t.Errorf("lag sum %v, want 90", lag.GetSampleSum())
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if _, ok := fams["process_resident_memory_bytes"]; !ok {
		t.Error("no process metrics")
	}

	// A new run shows in the next scrape: the cache follows the journal.
	run("db", journal.RunRunning)
	fams = scrape(t, m.Handler())
	if got, _ := value(t, fams, "kiln_runs", map[string]string{"state": "running"}); got != 1 {
		t.Errorf("running runs after a new run: %v", got)
	}

	// A failed last check: success 0, the findings of the last good one stay.
	snap.Err, snap.Checks = errors.New("unreachable"), 2
	fams = scrape(t, m.Handler())
	if got, _ := value(t, fams, "kiln_drift_check_success", nil); got != 0 {
		t.Errorf("success after a failed check: %v", got)
	}
	if got, _ := value(t, fams, "kiln_drift_findings", map[string]string{"kind": "public", "severity": "drift"}); got != 1 {
		t.Errorf("findings after a failed check: %v", got)
	}
}

// Before the first check there are no drift metrics at all (not zeros,
// which would say "in sync").
func TestScrapeBeforeFirstCheck(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	m := New(Options{Journal: j, Snapshot: func() refresh.Snapshot { return refresh.Snapshot{Running: true} }})
	fams := scrape(t, m.Handler())
	for _, name := range []string{"kiln_drift_findings", "kiln_drift_check_success", "kiln_assets"} {
		if _, ok := fams[name]; ok {
			t.Errorf("%s before the first check", name)
		}
	}
	if _, ok := value(t, fams, "kiln_runs", map[string]string{"state": "succeeded"}); !ok {
		t.Error("no kiln_runs")
	}
}
