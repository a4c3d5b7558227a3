package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/report"
)

// A released run is recorded as released: kiln runs shows it succeeded in
// the publish phase (the aws backend's is checked in TestJSONContract).
func TestRunsRecordsReleaseLocal(t *testing.T) {
	w := newLocalWorld(t, 50)
	rel := w.release(t, "sandbox", "", "latest", time.Now())
	out, stderr, code := w.kiln(t, "runs", "--run", rel.run, "-o", "json")
	if code != 0 {
		t.Fatalf("runs --run: exit %d: %s", code, stderr)
	}
	var rep report.Runs
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Runs) != 1 {
		t.Fatalf("runs report %v:\n%s", err, out)
	}
	if r := rep.Runs[0]; r.State != journal.RunSucceeded || r.Phase != "publish" {
		t.Errorf("run %s after release: %s (phase %s), want succeeded (phase publish)", r.ID, r.State, r.Phase)
	}
	out, _, _ = w.kiln(t, "runs")
	if !strings.Contains(out, rel.run) || !strings.Contains(out, "succeeded") {
		t.Errorf("runs table:\n%s", out)
	}
}
