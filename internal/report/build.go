package report

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/kiln-images/kiln/internal/assets"
	"github.com/kiln-images/kiln/internal/channel"
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/drift"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/schedule"
)

// The constructors below make the documents that both a command and kiln
// serve's API print, so the two cannot drift apart: each document is put
// together in one place.

// NewRuns is kiln runs: the runs given, and with --run that run's steps.
func NewRuns(runs []journal.Run, steps []journal.Step) Runs {
	return Runs{Schema: SchemaRuns, Runs: runs, Steps: steps}
}

// NewManifestShow is kiln manifest show of the channels named, read from
// the working tree. The names must be the project's channels.
func NewManifestShow(cfg *config.Config, channels []string) (ManifestShow, error) {
	r := ManifestShow{Schema: SchemaManifestShow}
	for _, ch := range channels {
		path, err := cfg.ManifestPath(ch)
		if err != nil {
			return r, err
		}
		// Open checks the file against the channel's formats; the report
		// carries the document as its consumers read it.
		_, l, err := channel.Open(cfg, ch)
		if err != nil {
			return r, err
		}
		doc, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			doc = []byte("{}")
		case err != nil:
			return r, err
		}
		r.Channels = append(r.Channels, ChannelManifest{Channel: ch, Path: path, Format: l.Format().Name, Manifest: json.RawMessage(doc)})
	}
	return r, nil
}

// NewSchedule is kiln schedule: the next count times after from of each
// scheduled use case and architecture.
func NewSchedule(cfg *config.Config, from time.Time, count int) (Schedule, error) {
	rep := Schedule{Schema: SchemaSchedule, From: from}
	for _, j := range schedule.Jobs(cfg) {
		next, err := j.Times(from, count)
		if err != nil {
			return rep, err
		}
		rep.Jobs = append(rep.Jobs, ScheduleJob{Job: j, Next: next})
	}
	return rep, nil
}

// NewAssets is kiln assets of the assets an inventory found.
func NewAssets(as []cloud.Asset) Assets {
	return Assets{Schema: SchemaAssets, Runs: assets.ByRun(as), Assets: as}
}

// NewDrift is kiln drift of the channels checked.
func NewDrift(channels []string, rep drift.Report) Drift {
	return Drift{Schema: SchemaDrift, Channels: channels, Report: rep}
}
