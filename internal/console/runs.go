package console

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/journal"
)

// runsPerPage is how many runs a page of the runs list shows.
const runsPerPage = 50

// Run statuses as pages show them: the journal's states, and interrupted
// for a run the journal says is running that no process works on.
const (
	statusRunning     = "running"
	statusSucceeded   = "succeeded"
	statusFailed      = "failed"
	statusInterrupted = "interrupted"
)

func (c *Console) runStatus(r journal.Run) string {
	if r.State == journal.RunRunning && !c.o.RunLocked(r.ID) {
		return statusInterrupted
	}
	return string(r.State)
}

type runsPage struct {
	Runs         []runRow
	Total        int
	Page         int
	Pages        int
	UseCase      string
	State        string
	UseCaseLinks []filterLink
	StateLinks   []filterLink
	Prev         string
	Next         string
}

// filterLink is a link that filters the runs list.
type filterLink struct {
	Label   string
	URL     string
	Current bool
}

type runRow struct {
	journal.Run
	Status string
	Took   time.Duration
}

func (c *Console) runsPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page := runsPage{UseCase: q.Get("use_case"), State: q.Get("state"), Page: 1}
	states := []string{string(journal.RunRunning), string(journal.RunSucceeded), string(journal.RunFailed)}
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			c.badRequest(w, r, fmt.Errorf("page %q: give a page number from 1", p))
			return
		}
		page.Page = n
	}
	if page.State != "" && !slices.Contains(states, page.State) {
		c.badRequest(w, r, fmt.Errorf("state %q: give %s", page.State, strings.Join(states, ", ")))
		return
	}
	runs, total, err := c.o.Journal.RunsPage(r.Context(), page.UseCase, journal.RunState(page.State), (page.Page-1)*runsPerPage, runsPerPage)
	if err != nil {
		c.Failed(w, r, err)
		return
	}
	page.Total = total
	page.Pages = max(1, (total+runsPerPage-1)/runsPerPage)
	for _, run := range runs {
		page.Runs = append(page.Runs, runRow{Run: run, Status: c.runStatus(run), Took: run.Updated.Sub(run.Created)})
	}
	link := func(useCase, state string, n int) string {
		v := url.Values{}
		if useCase != "" {
			v.Set("use_case", useCase)
		}
		if state != "" {
			v.Set("state", state)
		}
		if n > 1 {
			v.Set("page", strconv.Itoa(n))
		}
		if len(v) == 0 {
			return "/runs"
		}
		return "/runs?" + v.Encode()
	}
	if page.Page > 1 {
		page.Prev = link(page.UseCase, page.State, page.Page-1)
	}
	if page.Page < page.Pages {
		page.Next = link(page.UseCase, page.State, page.Page+1)
	}
	for _, u := range append([]string{""}, c.o.Config.UseCaseNames()...) {
		page.UseCaseLinks = append(page.UseCaseLinks, filterLink{Label: cmp.Or(u, "any"), URL: link(u, page.State, 1), Current: u == page.UseCase})
	}
	for _, s := range append([]string{""}, states...) {
		page.StateLinks = append(page.StateLinks, filterLink{Label: cmp.Or(s, "any"), URL: link(page.UseCase, s, 1), Current: s == page.State})
	}
	c.render(w, r, http.StatusOK, "runs", "Runs", page)
}

type runPage struct {
	Run    journal.Run
	Status string
	Resume string
	Start  time.Time
	End    time.Time
	Took   time.Duration
	Phases []phaseGroup
	Log    *consoleLog
	// The run's assets as the last check found them.
	Checked bool
	AsOf    time.Time
	Assets  []cloud.Asset
	CostKey string
}

type phaseGroup struct {
	Phase string
	State string
	Start time.Duration // from the run's first step
	Took  time.Duration
	Steps []stepRow
}

type stepRow struct {
	journal.Step
	Start time.Duration // from the run's first step
	Took  time.Duration
	Open  bool // not ended
	// X and W place the step's bar on the run's time line, in percent.
	X, W string
}

func (c *Console) runPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := journal.ParseAssetID(id); err != nil {
		c.NotFound(w, r, err.Error())
		return
	}
	run, steps, err := c.o.Journal.Run(r.Context(), id)
	if errors.Is(err, journal.ErrUnknownRun) {
		c.NotFound(w, r, fmt.Sprintf("run %s is not in this machine's journal", id))
		return
	} else if err != nil {
		c.Failed(w, r, err)
		return
	}
	page := runPage{Run: run, Status: c.runStatus(run), CostKey: c.o.Config.CostTag.Key}
	if page.Status == statusInterrupted || (page.Status == statusFailed && run.Phase != cloud.PhaseTest) {
		page.Resume = "kiln release --resume " + run.ID
	}
	page.Start, page.End, page.Phases = timeline(steps, page.Status == statusRunning)
	page.Took = page.End.Sub(page.Start)
	if page.Log, err = c.readConsoleLog(id, consoleLogTail); err != nil {
		c.Failed(w, r, err)
		return
	}
	if snap := c.o.Checks.Snapshot(); snap.Result != nil {
		page.Checked, page.AsOf = true, snap.LastSuccess
		page.Assets = runAssets(snap.Result.Assets.Assets, id)
	}
	c.render(w, r, http.StatusOK, "run", "Run "+id, page)
}

// runAssets are the assets of run id, with their untagged children.
func runAssets(all []cloud.Asset, id string) []cloud.Asset {
	byID := make(map[string]cloud.Asset, len(all))
	for _, a := range all {
		byID[a.Region+"/"+a.ID] = a
	}
	var out []cloud.Asset
	for _, a := range all {
		if assets.RunOf(a, byID) == id {
			out = append(out, a)
		}
	}
	return out
}

// timeline groups steps by phase in the order the phases began and places
// each step on the run's time line. Open steps of a live run run until
// now; those of a finished or interrupted run end where the run's last
// recorded moment is.
func timeline(steps []journal.Step, live bool) (start, end time.Time, phases []phaseGroup) {
	if len(steps) == 0 {
		return
	}
	start = steps[0].Started
	for _, s := range steps {
		if s.Started.Before(start) {
			start = s.Started
		}
		for _, t := range []time.Time{s.Started, s.Ended} {
			if t.After(end) {
				end = t
			}
		}
	}
	if live {
		end = time.Now()
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Millisecond
	}
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(span) }
	byPhase := map[string]int{}
	for _, s := range steps {
		row := stepRow{Step: s, Start: s.Started.Sub(start)}
		stepEnd := s.Ended
		if s.Ended.IsZero() {
			row.Open, stepEnd = true, end
		}
		row.Took = stepEnd.Sub(s.Started)
		x := pct(row.Start)
		wd := max(pct(row.Took), 0.4) // a step of a millisecond still shows
		if x+wd > 100 {
			x = max(0, 100-wd)
		}
		row.X, row.W = fmt.Sprintf("%.2f%%", x), fmt.Sprintf("%.2f%%", wd)
		i, ok := byPhase[s.Phase]
		if !ok {
			i = len(phases)
			byPhase[s.Phase] = i
			phases = append(phases, phaseGroup{Phase: s.Phase, State: string(journal.StepSucceeded), Start: row.Start})
		}
		g := &phases[i]
		g.Steps = append(g.Steps, row)
		if e := row.Start + row.Took; e-g.Start > g.Took {
			g.Took = e - g.Start
		}
		switch {
		case s.State == journal.StepFailed:
			g.State = string(journal.StepFailed)
		case row.Open && g.State != string(journal.StepFailed):
			g.State = string(journal.StepStarted)
		}
	}
	return start, end, phases
}

// consoleLogTail is how much of the boot test's console log a run's page
// shows; the whole file is a link away.
const consoleLogTail = 32 << 10

// consoleLogMax is the most of a log the console serves at all.
const consoleLogMax = 8 << 20

type consoleLog struct {
	Text      string
	Size      int64
	Truncated bool
}

// consoleLogPath is where the pipeline keeps a run's boot test console.
func (c *Console) consoleLogPath(id string) string {
	return filepath.Join(c.o.Config.StateDir(), "runs", id, "test-console.log")
}

// readConsoleLog reads the last limit bytes of run id's console log, made
// fit to show: control sequences removed, secrets redacted. nil when the
// run has none.
func (c *Console) readConsoleLog(id string, limit int64) (*consoleLog, error) {
	f, err := os.Open(c.consoleLogPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	l := &consoleLog{Size: st.Size()}
	if st.Size() > limit {
		if _, err := f.Seek(-limit, io.SeekEnd); err != nil {
			return nil, err
		}
		l.Truncated = true
	}
	data, err := io.ReadAll(io.LimitReader(f, limit))
	if err != nil {
		return nil, err
	}
	if l.Truncated {
		if i := strings.IndexByte(string(data), '\n'); i >= 0 {
			data = data[i+1:] // start at a whole line
		}
	}
	l.Text = journal.Redact(cleanConsole(string(data)))
	return l, nil
}

// consoleLog serves a run's whole console log (up to consoleLogMax) as
// text.
func (c *Console) consoleLog(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := journal.ParseAssetID(id); err != nil {
		c.NotFound(w, r, err.Error())
		return
	}
	l, err := c.readConsoleLog(id, consoleLogMax)
	if err != nil {
		c.Failed(w, r, err)
		return
	}
	if l == nil {
		c.NotFound(w, r, fmt.Sprintf("run %s has no boot test console log on this machine", id))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, l.Text)
}

// cleanConsole removes what a serial console writes for terminals (escape
// sequences, carriage returns, other control characters) and keeps the
// text.
func cleanConsole(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == 0x1b: // ESC: skip a CSI sequence, or the next byte
			if i+1 < len(s) && s[i+1] == '[' {
				i += 2
				for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
					i++
				}
			} else {
				i++
			}
		case ch == '\n' || ch == '\t':
			b.WriteByte(ch)
		case ch < 0x20 || ch == 0x7f:
			// dropped: \r, bells, backspaces
		default:
			b.WriteByte(ch)
		}
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}
