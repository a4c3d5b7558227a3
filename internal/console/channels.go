package console

import (
	"net/http"
	"path/filepath"
	"slices"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/manifest"
	"github.com/kiln-images/kiln/internal/refresh"
)

// Cell states, from best to worst; each is a CSS class and a label.
const (
	stateInSync      = "in-sync"
	stateUnchecked   = "unchecked"
	stateWarning     = "warning"
	stateDeprecating = "deprecating"
	stateDeprecated  = "deprecated"
	stateDrifted     = "drifted"
	stateMissing     = "missing"
	stateAbsent      = "absent" // a target region without an entry
)

var stateLabels = map[string]string{
	stateInSync:      "in sync",
	stateUnchecked:   "not checked yet",
	stateWarning:     "warning",
	stateDeprecating: "deprecating soon",
	stateDeprecated:  "deprecated",
	stateDrifted:     "drifted",
	stateMissing:     "missing",
	stateAbsent:      "not published",
}

type channelsPage struct {
	Channels []channelGrid
	Entries  int
	// For the release form (with actions).
	Releasable   []releasable
	ChannelNames []string
}

type releasable struct {
	UseCase string
	Arch    string
}

type channelGrid struct {
	Name        string
	Path        string
	MinInterval string
	Rows        []gridRow
	Counts      []stateCount
}

type stateCount struct {
	State string
	Label string
	N     int
}

type gridRow struct {
	Key     string
	UseCase string
	Arch    string
	Cells   []gridCell
	// Absent is true when no region has an entry.
	Absent bool
}

type gridCell struct {
	Region  string
	Has     bool
	Entry   manifest.Entry
	State   string
	Label   string
	Detail  []string
	Created time.Time
	RunID   string
}

func (c *Console) channelsPage(w http.ResponseWriter, r *http.Request) {
	cfg := c.o.Config
	snap := c.o.Checks.Snapshot()
	idx := newCheckIndex(snap)
	page := channelsPage{ChannelNames: cfg.ChannelNames()}
	for _, name := range cfg.UseCaseNames() {
		for _, arch := range cfg.UseCases[name].Architectures {
			page.Releasable = append(page.Releasable, releasable{name, arch})
		}
	}
	for _, ch := range cfg.ChannelNames() {
		m, err := channel.Load(cfg, ch)
		if err != nil {
			c.Failed(w, r, err)
			return
		}
		path, _ := cfg.ManifestPath(ch)
		g := channelGrid{Name: ch, Path: c.relPath(path)}
		if iv := cfg.Channels[ch].MinInterval; iv > 0 {
			g.MinInterval = iv.String()
		}
		g.Rows = c.gridRows(ch, m, idx)
		counts := map[string]int{}
		for _, row := range g.Rows {
			for _, cell := range row.Cells {
				counts[cell.State]++
				if cell.Has {
					page.Entries++
				}
			}
		}
		for _, s := range []string{stateInSync, stateUnchecked, stateWarning, stateDeprecating, stateDeprecated, stateDrifted, stateMissing, stateAbsent} {
			if counts[s] > 0 {
				g.Counts = append(g.Counts, stateCount{s, stateLabels[s], counts[s]})
			}
		}
		page.Channels = append(page.Channels, g)
	}
	c.render(w, r, http.StatusOK, "channels", "Channels", page)
}

// gridRows lays out a channel's manifest: a row per use case and
// architecture of the config (and per manifest key the config no longer
// has), a cell per target region and per region the manifest names.
func (c *Console) gridRows(ch string, m manifest.Manifest, idx checkIndex) []gridRow {
	cfg := c.o.Config
	var rows []gridRow
	seen := map[string]bool{}
	for _, name := range cfg.UseCaseNames() {
		u := cfg.UseCases[name]
		for _, arch := range u.Architectures {
			key := u.ManifestKey(arch)
			seen[key] = true
			rows = append(rows, c.gridRow(ch, key, name, arch, cfg.TargetRegions(u), m[key], idx))
		}
	}
	for _, key := range sortedKeys(m) {
		if !seen[key] {
			rows = append(rows, c.gridRow(ch, key, key, "", nil, m[key], idx))
		}
	}
	return rows
}

func (c *Console) gridRow(ch, key, useCase, arch string, targets []string, entries map[string]manifest.Entry, idx checkIndex) gridRow {
	row := gridRow{Key: key, UseCase: useCase, Arch: arch}
	regions := slices.Clone(targets)
	for _, r := range sortedKeys(entries) {
		if !slices.Contains(regions, r) {
			regions = append(regions, r)
		}
	}
	row.Absent = len(entries) == 0
	for _, region := range regions {
		cell := gridCell{Region: region}
		e, ok := entries[region]
		if !ok {
			cell.State = stateAbsent
		} else {
			cell.Has, cell.Entry = true, e
			cell.State, cell.Detail = idx.state(ch, key, region, e.ID)
			if a, ok := idx.assets[region+"/"+e.ID]; ok {
				cell.Created, cell.RunID = a.Created, a.Tags[cloud.TagAssetID]
			}
		}
		cell.Label = stateLabels[cell.State]
		row.Cells = append(row.Cells, cell)
	}
	return row
}

// checkIndex finds the last check's results by entry.
type checkIndex struct {
	ok       bool
	checked  map[string]string // channel/key/region -> the image id checked
	findings map[string][]drift.Finding
	assets   map[string]cloud.Asset // region/id
}

func newCheckIndex(s refresh.Snapshot) checkIndex {
	idx := checkIndex{checked: map[string]string{}, findings: map[string][]drift.Finding{}, assets: map[string]cloud.Asset{}}
	if s.Result == nil {
		return idx
	}
	idx.ok = true
	for _, ch := range s.Result.Checked {
		for _, e := range ch.Manifest.Entries() {
			idx.checked[ch.Name+"/"+e.UseCase+"/"+e.Region] = e.ID
		}
	}
	for _, f := range s.Result.Drift.Findings {
		if f.Channel != "" {
			k := f.Channel + "/" + f.UseCase + "/" + f.Region
			idx.findings[k] = append(idx.findings[k], f)
		}
	}
	for _, a := range s.Result.Assets.Assets {
		idx.assets[a.Region+"/"+a.ID] = a
	}
	return idx
}

// state is the drift state of an entry and the findings that make it.
func (idx checkIndex) state(ch, key, region, id string) (string, []string) {
	k := ch + "/" + key + "/" + region
	if !idx.ok || idx.checked[k] != id {
		return stateUnchecked, nil
	}
	state := stateInSync
	var detail []string
	rank := func(s string) int {
		return slices.Index([]string{stateInSync, stateWarning, stateDeprecating, stateDeprecated, stateDrifted, stateMissing}, s)
	}
	for _, f := range idx.findings[k] {
		if f.ImageID != id {
			continue
		}
		s := stateWarning
		switch {
		case f.Kind == drift.Missing:
			s = stateMissing
		case f.Severity == drift.SevDrift:
			s = stateDrifted
		case f.Kind == drift.Deprecated:
			s = stateDeprecated
		case f.Kind == drift.Deprecating:
			s = stateDeprecating
		}
		if rank(s) > rank(state) {
			state = s
		}
		detail = append(detail, string(f.Kind)+": "+f.Message)
	}
	return state, detail
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// historyPage lists the commits that changed a channel's manifest.
type historyPage struct {
	Channel   string
	Path      string
	Revisions []manifest.Revision
	Error     string
}

func (c *Console) historyPage(w http.ResponseWriter, r *http.Request) {
	cfg := c.o.Config
	ch := r.PathValue("channel")
	path, err := cfg.ManifestPath(ch)
	if err != nil {
		c.NotFound(w, r, err.Error())
		return
	}
	page := historyPage{Channel: ch, Path: c.relPath(path)}
	rel, err := filepath.Rel(cfg.Dir, path)
	if err == nil {
		page.Revisions, err = manifest.History(r.Context(), cfg.Dir, "./"+filepath.ToSlash(rel), historyLimit)
	}
	if err != nil {
		page.Error = err.Error()
	}
	c.render(w, r, http.StatusOK, "history", "History of "+ch, page)
}

// historyLimit is how many commits the history page lists.
const historyLimit = 100
