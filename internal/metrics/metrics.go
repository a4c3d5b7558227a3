// Package metrics exposes kiln's state to Prometheus at kiln serve's
// /metrics: what the journal recorded (runs by state, phase durations, the
// last release into each channel), what the last drift check found
// (findings by kind, assets by kind), and how late the scheduler started
// the releases it ran. Every value is read from the journal or the drift
// check's results when Prometheus scrapes; nothing calls the cloud.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/refresh"
	"github.com/kiln-images/kiln/internal/schedule"
)

// Journal is what the metrics read from the journal.
type Journal interface {
	Stamp(ctx context.Context) (string, error)
	RunCounts(ctx context.Context) (map[journal.RunState]int, error)
	PhaseSpans(ctx context.Context) ([]journal.PhaseSpan, error)
	LastSucceeded(ctx context.Context, name string) ([]journal.LastStep, error)
}

// Options configure the metrics.
type Options struct {
	Journal Journal
	// Snapshot returns the drift check's state; nil when the server runs
	// no drift check.
	Snapshot func() refresh.Snapshot
	// DocumentStep is the name of the journal step that writes a channel
	// manifest; its detail is the manifest's path.
	DocumentStep string
	// Channel names the channel whose manifest is at path, or "".
	Channel func(path string) string
	Log     *slog.Logger
}

// PhaseBuckets are the bounds of the phase duration histograms, in
// seconds: a local publish takes under a second, an aws build half an
// hour.
var PhaseBuckets = []float64{0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200}

// LagBuckets are the bounds of the scheduler lag histogram, in seconds: a
// release due while another runs waits for it.
var LagBuckets = []float64{0.1, 1, 5, 30, 60, 300, 900, 1800, 3600}

var (
	descRuns = prometheus.NewDesc("kiln_runs",
		"Runs in this machine's journal by state (running includes interrupted runs).", []string{"state"}, nil)
	descPhase = prometheus.NewDesc("kiln_phase_duration_seconds",
		"Time from the first step of a run's phase to its last, for phases whose steps have all ended.", []string{"phase", "outcome"}, nil)
	descLastRelease = prometheus.NewDesc("kiln_last_release_timestamp_seconds",
		"When a run of the use case and architecture last wrote the channel's manifest.", []string{"use_case", "arch", "channel"}, nil)
	descFindings = prometheus.NewDesc("kiln_drift_findings",
		"Findings of the last successful drift check by kind and severity (drift, warning, orphan).", []string{"kind", "severity"}, nil)
	descChecked = prometheus.NewDesc("kiln_drift_entries_checked",
		"Manifest entries the last successful drift check compared with the cloud.", nil, nil)
	descInSync = prometheus.NewDesc("kiln_drift_entries_in_sync",
		"Manifest entries the last successful drift check found in sync.", nil, nil)
	descAssets = prometheus.NewDesc("kiln_assets",
		"kiln-managed resources found by the last successful check, by kind and region.", []string{"kind", "region"}, nil)
	descCheckSuccess = prometheus.NewDesc("kiln_drift_check_success",
		"1 when the last drift check succeeded, 0 when it failed.", nil, nil)
	descCheckLast = prometheus.NewDesc("kiln_drift_check_last_success_timestamp_seconds",
		"When the last successful drift check ended.", nil, nil)
	descCheckDuration = prometheus.NewDesc("kiln_drift_check_duration_seconds",
		"How long the last drift check (and asset scan) took.", nil, nil)
)

// Metrics is kiln's Prometheus registry.
type Metrics struct {
	opts Options
	reg  *prometheus.Registry

	lag       prometheus.Histogram
	scheduled *prometheus.CounterVec

	mu     sync.Mutex
	stamp  string
	cached []prometheus.Metric // derived from the journal at stamp
}

// New returns the metrics, with the Go runtime's and the process's.
func New(o Options) *Metrics {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		opts: o,
		reg:  prometheus.NewRegistry(),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kiln_scheduler_lag_seconds",
			Help:    "How late the scheduler started a release after its due time.",
			Buckets: LagBuckets,
		}),
		scheduled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_scheduled_releases_total",
			Help: "Releases the scheduler in this server ran, by outcome.",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.lag, m.scheduled, (*collector)(m),
	)
	return m
}

// Handler serves the metrics in the format the scraper asks for.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(m.opts.Log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       10 * time.Second,
	})
}

// ObserveScheduled records a release the scheduler ran.
func (m *Metrics) ObserveScheduled(o schedule.Outcome) {
	m.lag.Observe(max(o.Lag(), 0).Seconds())
	outcome := "succeeded"
	if o.Err != nil {
		outcome = "failed"
	}
	m.scheduled.WithLabelValues(outcome).Inc()
}

// collector reads the journal and the drift check at each scrape.
type collector Metrics

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRuns, descPhase, descLastRelease, descFindings, descChecked,
		descInSync, descAssets, descCheckSuccess, descCheckLast, descCheckDuration} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, metric := range c.journalMetrics(ctx) {
		ch <- metric
	}
	if c.opts.Snapshot != nil {
		c.checkMetrics(ch, c.opts.Snapshot())
	}
}

// journalMetrics are the metrics derived from the journal, computed again
// only when it changed: a thousand runs' steps are one pass each time.
func (c *collector) journalMetrics(ctx context.Context) []prometheus.Metric {
	j := c.opts.Journal
	stamp, err := j.Stamp(ctx)
	if err != nil {
		return []prometheus.Metric{prometheus.NewInvalidMetric(descRuns, err)}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if stamp == c.stamp && c.cached != nil {
		return c.cached
	}
	var out []prometheus.Metric
	counts, err := j.RunCounts(ctx)
	if err != nil {
		return []prometheus.Metric{prometheus.NewInvalidMetric(descRuns, err)}
	}
	for _, s := range []journal.RunState{journal.RunRunning, journal.RunSucceeded, journal.RunFailed} {
		out = append(out, prometheus.MustNewConstMetric(descRuns, prometheus.GaugeValue, float64(counts[s]), string(s)))
	}

	spans, err := j.PhaseSpans(ctx)
	if err != nil {
		return []prometheus.Metric{prometheus.NewInvalidMetric(descPhase, err)}
	}
	type key struct{ phase, outcome string }
	hists := map[key]*constHist{}
	var order []key
	for _, s := range spans {
		k := key{s.Phase, "succeeded"}
		if s.Failed {
			k.outcome = "failed"
		}
		h := hists[k]
		if h == nil {
			h = newConstHist(PhaseBuckets)
			hists[k] = h
			order = append(order, k)
		}
		h.observe(s.Duration().Seconds())
	}
	for _, k := range order {
		h := hists[k]
		out = append(out, prometheus.MustNewConstHistogram(descPhase, h.count, h.sum, h.buckets, k.phase, k.outcome))
	}

	if c.opts.DocumentStep != "" && c.opts.Channel != nil {
		last, err := j.LastSucceeded(ctx, c.opts.DocumentStep)
		if err != nil {
			return []prometheus.Metric{prometheus.NewInvalidMetric(descLastRelease, err)}
		}
		for _, l := range last {
			if ch := c.opts.Channel(l.Detail); ch != "" {
				out = append(out, prometheus.MustNewConstMetric(descLastRelease, prometheus.GaugeValue,
					float64(l.Ended.UnixNano())/1e9, l.UseCase, l.Arch, ch))
			}
		}
	}
	c.stamp, c.cached = stamp, out
	return out
}

func (c *collector) checkMetrics(ch chan<- prometheus.Metric, s refresh.Snapshot) {
	if s.Checks > 0 {
		ok := 1.0
		if s.Err != nil {
			ok = 0
		}
		ch <- prometheus.MustNewConstMetric(descCheckSuccess, prometheus.GaugeValue, ok)
		ch <- prometheus.MustNewConstMetric(descCheckDuration, prometheus.GaugeValue, s.Ended.Sub(s.Started).Seconds())
	}
	if s.Result == nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(descCheckLast, prometheus.GaugeValue, float64(s.LastSuccess.UnixNano())/1e9)
	sum := s.Result.Drift.Summary
	ch <- prometheus.MustNewConstMetric(descChecked, prometheus.GaugeValue, float64(sum.Checked))
	ch <- prometheus.MustNewConstMetric(descInSync, prometheus.GaugeValue, float64(sum.InSync))
	type key struct {
		kind drift.Kind
		sev  drift.Severity
	}
	findings := map[key]int{}
	for _, f := range s.Result.Drift.Findings {
		findings[key{f.Kind, f.Severity}]++
	}
	// Every kind is reported, so that an alert on one sees 0, not nothing.
	for _, k := range drift.Kinds {
		if _, ok := findings[key{k, k.Severity()}]; !ok {
			findings[key{k, k.Severity()}] = 0
		}
	}
	for k, n := range findings {
		ch <- prometheus.MustNewConstMetric(descFindings, prometheus.GaugeValue, float64(n), string(k.kind), string(k.sev))
	}
	type akey struct {
		kind   cloud.Kind
		region string
	}
	assets := map[akey]int{}
	for _, a := range s.Result.Assets.Assets {
		assets[akey{a.Kind, a.Region}]++
	}
	for k, n := range assets {
		ch <- prometheus.MustNewConstMetric(descAssets, prometheus.GaugeValue, float64(n), string(k.kind), k.region)
	}
}

// constHist accumulates a histogram for a const metric.
type constHist struct {
	bounds  []float64
	buckets map[float64]uint64 // cumulative counts
	count   uint64
	sum     float64
}

func newConstHist(bounds []float64) *constHist {
	h := &constHist{bounds: bounds, buckets: map[float64]uint64{}}
	for _, b := range bounds {
		h.buckets[b] = 0
	}
	return h
}

func (h *constHist) observe(v float64) {
	h.count++
	h.sum += v
	for _, b := range h.bounds {
		if v <= b {
			h.buckets[b]++
		}
	}
}
