package console

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/report"
)

type driftPage struct {
	Has      bool
	AsOf     time.Time
	Summary  drift.Summary
	Drifted  int
	Kinds    []kindCount
	Drift    []drift.Finding
	Warnings []drift.Finding
	Orphans  []drift.Finding
	Channels []string
}

type kindCount struct {
	Kind string
	N    int
}

func (c *Console) driftPage(w http.ResponseWriter, r *http.Request) {
	page := driftPage{}
	snap := c.o.Checks.Snapshot()
	if res := snap.Result; res != nil {
		page.Has, page.AsOf = true, snap.LastSuccess
		page.Summary, page.Channels = res.Drift.Summary, res.Drift.Channels
		for _, k := range sortedKeys(kindKeys(res.Drift.Summary.Drifted)) {
			n := res.Drift.Summary.Drifted[drift.Kind(k)]
			page.Kinds = append(page.Kinds, kindCount{k, n})
			page.Drifted += n
		}
		for _, f := range res.Drift.Findings {
			switch f.Severity {
			case drift.SevDrift:
				page.Drift = append(page.Drift, f)
			case drift.SevWarning:
				page.Warnings = append(page.Warnings, f)
			case drift.SevOrphan:
				page.Orphans = append(page.Orphans, f)
			}
		}
	}
	c.render(w, r, http.StatusOK, "drift", "Drift", page)
}

func kindKeys(m map[drift.Kind]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

type assetsPage struct {
	Has     bool
	AsOf    time.Time
	CostKey string
	Total   int
	Kinds   []kindCount
	Runs    []assetRun
	// With ?run=ID: that run's assets.
	Run    string
	Assets []cloud.Asset
}

type assetRun struct {
	assets.RunSummary
	Kinds []kindCount
	Cost  []string // the cost tag's values on the run's assets
}

func (c *Console) assetsPage(w http.ResponseWriter, r *http.Request) {
	page := assetsPage{CostKey: c.o.Config.CostTag.Key, Run: r.URL.Query().Get("run")}
	if page.Run != "" {
		if _, err := journal.ParseAssetID(page.Run); err != nil {
			c.badRequest(w, r, fmt.Errorf("run: %w", err))
			return
		}
	}
	snap := c.o.Checks.Snapshot()
	if res := snap.Result; res != nil {
		page.Has, page.AsOf = true, snap.LastSuccess
		all := res.Assets.Assets
		if page.Run != "" {
			all = runAssets(all, page.Run)
			page.Assets = all
		}
		kinds := map[string]int{}
		for _, a := range all {
			kinds[string(a.Kind)]++
		}
		page.Total = len(all)
		page.Kinds = countsByKind(kinds)
		if page.Run == "" {
			cost := costByRun(all, page.CostKey)
			for _, s := range res.Assets.Runs {
				ks := map[string]int{}
				for k, n := range s.Kinds {
					ks[string(k)] = n
				}
				page.Runs = append(page.Runs, assetRun{RunSummary: s, Kinds: countsByKind(ks), Cost: cost[s.RunID]})
			}
		}
	}
	c.render(w, r, http.StatusOK, "assets", "Assets", page)
}

// countsByKind lists counts in kiln's delete order of kinds.
func countsByKind(m map[string]int) []kindCount {
	var out []kindCount
	for _, k := range cloud.DeleteOrder {
		if n := m[string(k)]; n > 0 {
			out = append(out, kindCount{string(k), n})
			delete(m, string(k))
		}
	}
	for _, k := range sortedKeys(m) {
		out = append(out, kindCount{k, m[k]})
	}
	return out
}

// costByRun is the cost tag's values on each run's assets.
func costByRun(all []cloud.Asset, key string) map[string][]string {
	out := map[string][]string{}
	if key == "" {
		return out
	}
	byID := make(map[string]cloud.Asset, len(all))
	for _, a := range all {
		byID[a.Region+"/"+a.ID] = a
	}
	for _, a := range all {
		v, ok := a.Tags[key]
		if !ok {
			continue
		}
		run := assets.RunOf(a, byID)
		if !slices.Contains(out[run], v) {
			out[run] = append(out[run], v)
			sort.Strings(out[run])
		}
	}
	return out
}

type schedulePage struct {
	Jobs      []jobRow
	InProcess bool
	Status    *report.SchedulerStatus
	Error     string
}

type jobRow struct {
	report.ScheduleJob
	Last       *journal.Run
	LastStatus string
}

// scheduleCount is how many next times the schedule page shows per job.
const scheduleCount = 5

func (c *Console) schedulePage(w http.ResponseWriter, r *http.Request) {
	page := schedulePage{}
	rep, err := report.NewSchedule(c.o.Config, time.Now().UTC(), scheduleCount)
	if err != nil {
		page.Error = err.Error()
	}
	latest, err := c.o.Journal.Latest(r.Context())
	if err != nil {
		c.Failed(w, r, err)
		return
	}
	for _, j := range rep.Jobs {
		row := jobRow{ScheduleJob: j}
		for i := range latest {
			if latest[i].UseCase == j.UseCase && latest[i].Arch == j.Arch {
				row.Last, row.LastStatus = &latest[i], c.runStatus(latest[i])
			}
		}
		page.Jobs = append(page.Jobs, row)
	}
	if c.o.Schedule != nil {
		page.InProcess, page.Status = true, c.o.Schedule.Status()
	}
	c.render(w, r, http.StatusOK, "schedule", "Schedule", page)
}
