package console

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/report"
)

// The API's documents are the commands' -o json documents, made by the
// same constructors in package report:
//
//	GET /api/v1/runs                 kiln runs
//	GET /api/v1/runs/{id}            kiln runs --run ID
//	GET /api/v1/manifests[?channel=] kiln manifest show [--channel C]
//	GET /api/v1/schedule[?count=&from=]  kiln schedule [--count N] [--from T]
//	GET /api/v1/drift                kiln drift, as of the server's last check
//	GET /api/v1/assets[?run=]        kiln assets [--run ID], as of the last check
//	GET /api/v1/status               kiln.serve-status/v1: the check and the scheduler
//
// Errors are kiln.error/v1 documents with the HTTP status that fits.

// WriteJSON writes a document with status (for a section's API too).
func (c *Console) WriteJSON(w http.ResponseWriter, status int, doc any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if err := report.Write(w, doc); err != nil {
		c.log.Debug("console: write JSON", "err", err)
	}
}

// APIError writes err as a kiln.error/v1 document; exit_code is what the
// command would have exited with (2: error).
func (c *Console) APIError(w http.ResponseWriter, status int, err error) {
	if status >= 500 {
		c.log.Error("console: api", "err", err)
	}
	c.WriteJSON(w, status, report.NewError(err, 2))
}

func (c *Console) apiStatus(w http.ResponseWriter, r *http.Request) {
	c.WriteJSON(w, http.StatusOK, c.status())
}

func (c *Console) status() report.ServeStatus {
	s := c.o.Checks.Snapshot()
	st := report.ServeStatus{
		Schema: report.SchemaServeStatus, Project: c.o.Config.Project, Backend: c.o.Backend, Actions: c.o.Actions != nil,
		Check: report.CheckStatus{
			Every: config.Duration(c.o.CheckEvery), Running: s.Running, Started: utc(s.Started), Ended: utc(s.Ended),
			LastSuccess: utc(s.LastSuccess), Next: utc(s.Next),
		},
	}
	if s.Err != nil {
		st.Check.Error = s.Err.Error()
	}
	if c.o.Schedule != nil {
		st.Scheduler = c.o.Schedule.Status()
	}
	return st
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func (c *Console) apiRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := c.o.Journal.Runs(r.Context())
	if err != nil {
		c.APIError(w, http.StatusInternalServerError, err)
		return
	}
	c.WriteJSON(w, http.StatusOK, report.NewRuns(runs, nil))
}

func (c *Console) apiRun(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := journal.ParseAssetID(id); err != nil {
		c.APIError(w, http.StatusBadRequest, fmt.Errorf("run: %w", err))
		return
	}
	run, steps, err := c.o.Journal.Run(r.Context(), id)
	if errors.Is(err, journal.ErrUnknownRun) {
		c.APIError(w, http.StatusNotFound, err)
		return
	} else if err != nil {
		c.APIError(w, http.StatusInternalServerError, err)
		return
	}
	c.WriteJSON(w, http.StatusOK, report.NewRuns([]journal.Run{run}, steps))
}

func (c *Console) apiManifests(w http.ResponseWriter, r *http.Request) {
	cfg := c.o.Config
	channels := cfg.ChannelNames()
	if ch := r.URL.Query().Get("channel"); ch != "" {
		if _, err := cfg.ManifestPath(ch); err != nil {
			c.APIError(w, http.StatusBadRequest, fmt.Errorf("channel: %w", err))
			return
		}
		channels = []string{ch}
	}
	rep, err := report.NewManifestShow(cfg, channels)
	if err != nil {
		c.APIError(w, http.StatusInternalServerError, err)
		return
	}
	c.WriteJSON(w, http.StatusOK, rep)
}

func (c *Console) apiSchedule(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	count, from := 3, time.Now().UTC()
	if s := q.Get("count"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 100 {
			c.APIError(w, http.StatusBadRequest, fmt.Errorf("count %q: give 1 to 100", s))
			return
		}
		count = n
	}
	if s := q.Get("from"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			c.APIError(w, http.StatusBadRequest, fmt.Errorf("from %q: not an RFC 3339 time such as 2026-11-21T03:00:00Z", s))
			return
		}
		from = t.UTC()
	}
	rep, err := report.NewSchedule(c.o.Config, from, count)
	if err != nil {
		c.APIError(w, http.StatusInternalServerError, err)
		return
	}
	c.WriteJSON(w, http.StatusOK, rep)
}

// errNoCheck answers for the check's documents before the first check has
// succeeded.
var errNoCheck = errors.New("no drift check has succeeded yet: see /api/v1/status")

// checked sets the headers that date a document from the last check:
// Last-Modified, and X-Kiln-Checked-At to the second in RFC 3339.
func checked(w http.ResponseWriter, at time.Time) {
	w.Header().Set("Last-Modified", at.UTC().Format(http.TimeFormat))
	w.Header().Set("X-Kiln-Checked-At", at.UTC().Format(time.RFC3339))
}

func (c *Console) apiDrift(w http.ResponseWriter, r *http.Request) {
	s := c.o.Checks.Snapshot()
	if s.Result == nil {
		w.Header().Set("Retry-After", "5")
		c.APIError(w, http.StatusServiceUnavailable, errNoCheck)
		return
	}
	checked(w, s.LastSuccess)
	c.WriteJSON(w, http.StatusOK, s.Result.Drift)
}

func (c *Console) apiAssets(w http.ResponseWriter, r *http.Request) {
	run := r.URL.Query().Get("run")
	if run != "" {
		if _, err := journal.ParseAssetID(run); err != nil {
			c.APIError(w, http.StatusBadRequest, fmt.Errorf("run: %w", err))
			return
		}
	}
	s := c.o.Checks.Snapshot()
	if s.Result == nil {
		w.Header().Set("Retry-After", "5")
		c.APIError(w, http.StatusServiceUnavailable, errNoCheck)
		return
	}
	checked(w, s.LastSuccess)
	if run == "" {
		c.WriteJSON(w, http.StatusOK, s.Result.Assets)
		return
	}
	c.WriteJSON(w, http.StatusOK, report.NewAssets(runAssets(s.Result.Assets.Assets, run)))
}
