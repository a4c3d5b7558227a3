package teardown

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/deploy/record"
)

// The plan: stop every unit, empty what goes, destroy the units last
// deployed first with what goes with them, then the leftovers by tag in
// dependency order; kept apart: what a template retains, and what the
// project keeps by type.
func TestPlanOrder(t *testing.T) {
	w := newWorld(t, projectYAML)
	w.seed(t)
	p, err := w.d.Plan(t.Context(), "hub", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"stop stack app", "stop stack data", "stop stack net",
		"empty bucket hub-data", "empty bucket hub-logs", "empty repository hub/app",
		"destroy stack stack-hub-app", "with-unit volume vol-1",
		"destroy stack stack-hub-data", "with-unit bucket hub-data", "with-unit repository hub/app",
		"destroy stack stack-hub-net",
		"delete snapshot snap-1", "delete snapshot snap-2", "delete volume vol-2", "delete bucket hub-logs",
	}
	if got := actions(p.Items); !slices.Equal(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantKept := []string{"bucket hub-archive", "log-group /hub/app", "log-group /hub/data"}
	if got := retainedIDs(p.Retained); !slices.Equal(got, wantKept) {
		t.Errorf("retained %v, want %v", got, wantKept)
	}
	for _, r := range p.Retained {
		if r.ID == "/hub/app" && r.Reason != "destroy.retain: log-group" || r.ID == "hub-archive" && r.Reason != "DeletionPolicy Retain in stack-hub-app" {
			t.Errorf("kept %s because %q", r.ID, r.Reason)
		}
	}
	if p.Deletes != 10 || len(p.Refused) != 0 || !slices.Equal(p.Hooks, []string{"backup"}) || p.State != record.StateDeployed {
		t.Errorf("plan %+v", p)
	}
	if len(w.cloud.calls) != 0 {
		t.Errorf("a plan made changes: %v", w.cloud.calls)
	}
}

// Refusals: protected without --force-protected, locked, depended on by a
// deployed deployment, a stack that would delete what the project keeps.
func TestPlanRefusals(t *testing.T) {
	yaml := strings.Replace(projectYAML, "    cost_tag: acme\n", "    cost_tag: acme\n    protect: true\n", 1)
	yaml = strings.Replace(yaml, "  other:\n", "  other:\n    depends_on: [hub]\n", 1)
	yaml = strings.Replace(yaml, "retain: [log-group]", "retain: [log-group, repository]", 1)
	w := newWorld(t, yaml)
	w.seed(t)
	r := w.record(t, "hub")
	r.Lock = &record.Mark{By: "bob", Reason: "demo"}
	record.Save(w.dir, r)
	p, err := w.d.Plan(t.Context(), "hub", Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"protected (protect: true", "locked by bob", "deployment other depends on it",
		"unit data would delete repository hub/app, which is kept (destroy.retain: repository)"} {
		if !slices.ContainsFunc(p.Refused, func(s string) bool { return strings.Contains(s, want) }) {
			t.Errorf("refusals %q lack %q", p.Refused, want)
		}
	}
	if _, err := w.d.Apply(t.Context(), p); !errors.Is(err, ErrRefused) {
		t.Fatalf("apply of a refused plan: %v", err)
	}
	if len(w.cloud.calls) != 0 {
		t.Errorf("a refused teardown made changes: %v", w.cloud.calls)
	}
	// --force-protected lifts only the protection.
	p, _ = w.d.Plan(t.Context(), "hub", Options{ForceProtected: true})
	if slices.ContainsFunc(p.Refused, func(s string) bool { return strings.Contains(s, "protected") }) || len(p.Refused) != 3 {
		t.Errorf("with --force-protected: %q", p.Refused)
	}
	// With --purge-retained the repository may go with its stack.
	p, _ = w.d.Plan(t.Context(), "hub", Options{ForceProtected: true, PurgeRetained: true})
	if len(p.Refused) != 2 {
		t.Errorf("with --purge-retained: %q", p.Refused)
	}
}

// Apply: the record says destroying, with what is kept, before anything
// is deleted; hooks first; everything goes in the plan's order; what is
// kept stays and is recorded; the neighbour is untouched; verification
// confirms the tag index's stale entries gone; the record says destroyed.
// TestApply tears hub down one step at a time and with steps of a kind
// at once (Concurrency): the same end, the same order of kinds.
func TestApply(t *testing.T) {
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency %d", n), func(t *testing.T) { testApply(t, n) })
	}
}

func testApply(t *testing.T, concurrency int) {
	w := newWorld(t, projectYAML)
	w.seed(t)
	w.d.Concurrency = concurrency
	p, err := w.d.Plan(t.Context(), "hub", Options{})
	if err != nil {
		t.Fatal(err)
	}
	checked := false
	w.d.Hook = func(ev string) {
		if ev == "record hub destroying" {
			checked = true
			r := w.record(t, "hub")
			if r.State != record.StateDestroying || len(r.Retained) != 3 || len(w.cloud.calls) != 0 {
				t.Errorf("at the start: state %s, retained %v, calls %v", r.State, r.Retained, w.cloud.calls)
			}
		}
	}
	rep, err := w.d.Apply(t.Context(), p)
	if err != nil {
		t.Fatalf("apply: %v\n%+v", err, rep.Items)
	}
	if !checked {
		t.Error("no record write before the deletions")
	}
	w.d.Hook = nil
	if log, _ := os.ReadFile(filepath.Join(w.dir, "backup.log")); string(log) != "hub\n" {
		t.Errorf("hook ran: %q", log)
	}
	// Left: the neighbour's, and what hub keeps.
	want := []string{"bucket|hub-archive", "bucket|other-data", "log-group|/hub/app", "log-group|/hub/data", "snapshot|snap-9", "stack|stack-other-net"}
	if got := w.cloud.ids(); !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	w.neighbourIntact(t)
	if w.cloud.res["bucket|hub-archive"].objects != 4 {
		t.Error("a kept bucket was emptied")
	}
	// Stop before empty before destroy, app before data before net.
	order := w.cloud.calls
	idx := func(s string) int { return slices.Index(order, s) }
	if !(idx("stop net") < idx("empty bucket hub-data") && idx("empty repository hub/app") < idx("destroy stack-hub-app") &&
		idx("destroy stack-hub-app") < idx("destroy stack-hub-data") && idx("destroy stack-hub-data") < idx("destroy stack-hub-net") &&
		idx("destroy stack-hub-net") < idx("delete snapshot snap-1")) {
		t.Errorf("calls out of order: %v", order)
	}
	r := w.record(t, "hub")
	if r.State != record.StateDestroyed || len(r.Units) != 0 || !slices.Equal(retainedIDs(r.Retained), []string{"bucket hub-archive", "log-group /hub/app", "log-group /hub/data"}) {
		t.Errorf("record %s units %v retained %v", r.State, r.Units, r.Retained)
	}
	if ev := r.History[len(r.History)-1]; ev.Action != "destroy" || ev.By != "ops@example.com" || ev.Detail != "10 resources deleted, 3 kept" {
		t.Errorf("event %+v", ev)
	}
	v := rep.Verification
	if v == nil || !v.Passed || v.Kept != 1 || len(v.Stale) == 0 || !slices.Contains(v.Stale, "arn:fake:snapshot|snap-1") {
		t.Errorf("verification %+v", v)
	}
	for _, it := range rep.Items {
		if it.Outcome != "done" {
			t.Errorf("item %+v", it)
		}
	}
	// Again: nothing to do, exit clean.
	p, err = w.d.Plan(t.Context(), "hub", Options{})
	if err != nil || len(p.Items) != 0 || len(p.Hooks) != 0 || len(p.Retained) != 3 {
		t.Fatalf("plan after: %+v %v", p, err)
	}
	if rep, err := w.d.Apply(t.Context(), p); err != nil || rep.Applied {
		t.Errorf("second apply: %+v %v", rep, err)
	}

	// --purge-retained removes what was kept, by its id where no tag
	// finds it (the stack's log group), and the record forgets it.
	p, err = w.d.Plan(t.Context(), "hub", Options{PurgeRetained: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(p.Items); !slices.Equal(got, []string{"empty bucket hub-archive", "delete bucket hub-archive", "delete log-group /hub/app", "delete log-group /hub/data"}) {
		t.Errorf("purge plan %v", got)
	}
	if _, err := w.d.Apply(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if got := w.cloud.ids(); !slices.Equal(got, []string{"bucket|other-data", "snapshot|snap-9", "stack|stack-other-net"}) {
		t.Errorf("after purge %v", got)
	}
	if r := w.record(t, "hub"); len(r.Retained) != 0 || r.State != record.StateDestroyed {
		t.Errorf("record after purge: %s %v", r.State, r.Retained)
	}
}

// A stack whose bucket is written to after it was emptied fails its
// delete; the teardown empties the unit's storage again and tries once
// more, and says so.
func TestDeleteFailedRetry(t *testing.T) {
	w := newWorld(t, projectYAML)
	w.seed(t)
	w.cloud.writeOnDelete["stack-hub-data"] = "hub-data"
	p, _ := w.d.Plan(t.Context(), "hub", Options{})
	rep, err := w.d.Apply(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rep.Items, func(it Item) bool { return it.ID == "stack-hub-data" })
	if it := rep.Items[i]; it.Outcome != "done" || !strings.Contains(it.Note, "DELETE_FAILED: bucket hub-data: The bucket you tried to delete is not empty") {
		t.Errorf("item %+v", it)
	}
	if n := strings.Count(strings.Join(w.cloud.calls, "\n"), "empty bucket hub-data"); n != 2 {
		t.Errorf("emptied %d times", n)
	}
	if w.cloud.has("bucket|hub-data") || w.cloud.has("stack|stack-hub-data") {
		t.Error("the stack or its bucket remains")
	}
}

// A stack the cloud protects against deletion (termination protection,
// set at deploy for protect: true) is destroyed only when the teardown
// was forced: then its protection is lifted first; otherwise it stays and
// the teardown says why and what to do.
func TestProtectedStack(t *testing.T) {
	for _, force := range []bool{false, true} {
		w := newWorld(t, projectYAML)
		w.seed(t)
		w.cloud.protected["stack-hub-data"] = true
		p, err := w.d.Plan(t.Context(), "hub", Options{ForceProtected: force})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := w.d.Apply(t.Context(), p)
		it := rep.Items[slices.IndexFunc(rep.Items, func(it Item) bool { return it.ID == "stack-hub-data" })]
		lifted := slices.Contains(w.cloud.calls, "protect stack-hub-data false")
		if force {
			if err != nil || it.Outcome != "done" || !strings.Contains(it.Note, "lifted (--force-protected)") || !lifted || w.cloud.has("stack|stack-hub-data") {
				t.Errorf("forced: %v; item %+v; lifted %t", err, it, lifted)
			}
			continue
		}
		if err == nil || it.Outcome != "failed" || !strings.Contains(it.Error, "termination protection") || !strings.Contains(it.Error, "--force-protected") ||
			lifted || !w.cloud.has("stack|stack-hub-data") {
			t.Errorf("not forced: %v; item %+v; lifted %t", err, it, lifted)
		}
		if n := strings.Count(strings.Join(w.cloud.calls, "\n"), "destroy stack-hub-data"); n != 1 {
			t.Errorf("not forced: destroyed %d times", n)
		}
	}
}

// What the teardown cannot remove is named, the record stays
// destroying with the reason, and the error says resources are left.
func TestLeftNamed(t *testing.T) {
	w := newWorld(t, projectYAML)
	w.seed(t)
	// A thing of a type kiln cannot confirm, and something tagged with
	// the cost tag that kiln did not make.
	w.cloud.add(&fres{typ: "thing", id: "arn:aws:foo:thing/1", tags: tagsOf("hub", "app")})
	w.cloud.add(&fres{typ: "volume-by-hand", id: "vol-hand", tags: map[string]string{"customer": "acme"}})
	p, _ := w.d.Plan(t.Context(), "hub", Options{})
	rep, err := w.d.Apply(t.Context(), p)
	if !errors.Is(err, ErrLeft) {
		t.Fatalf("apply: %v", err)
	}
	v := rep.Verification
	if v.Passed || len(v.Left) != 2 || v.Rounds < 2 {
		t.Fatalf("verification %+v", v)
	}
	for _, l := range v.Left {
		switch l.ID {
		case "arn:aws:foo:thing/1":
			if !strings.Contains(l.Note, "no describe for this type") {
				t.Errorf("left %+v", l)
			}
		case "vol-hand":
			if l.FoundBy != "tag index (cost tag)" || !strings.Contains(l.Note, "was not made by kiln") {
				t.Errorf("left %+v", l)
			}
		default:
			t.Errorf("left %+v", l)
		}
	}
	r := w.record(t, "hub")
	if r.State != record.StateDestroying || !strings.Contains(r.Reason, "2 resource(s) left") {
		t.Errorf("record %s: %s", r.State, r.Reason)
	}
}

// A failed pre-destroy hook stops the teardown before anything is
// deleted, and the deployment keeps its state.
func TestHookFails(t *testing.T) {
	w := newWorld(t, projectYAML)
	w.seed(t)
	os.WriteFile(filepath.Join(w.dir, "backup-fails"), nil, 0o644)
	p, _ := w.d.Plan(t.Context(), "hub", Options{})
	rep, err := w.d.Apply(t.Context(), p)
	if !errors.Is(err, ErrRefused) || len(w.cloud.calls) != 0 {
		t.Fatalf("apply: %v, calls %v", err, w.cloud.calls)
	}
	if r := w.record(t, "hub"); r.State != record.StateDeployed || !strings.Contains(r.Reason, "pre-destroy hook backup") {
		t.Errorf("record %s %q", r.State, r.Reason)
	}
	if len(rep.HookResults) != 1 || rep.HookResults[0].Error == "" {
		t.Errorf("hooks %+v", rep.HookResults)
	}
}

// Killed at any step boundary, a new teardown (a new process: new plan,
// new Destroyer) converges on the same end, runs the hook once, and never
// touches the neighbour. The kill is a panic out of the failpoint hook.
func TestCrashAtEveryBoundary(t *testing.T) {
	ref := newWorld(t, projectYAML)
	ref.seed(t)
	var boundaries []string
	ref.d.Hook = func(ev string) { boundaries = append(boundaries, ev) }
	p, _ := ref.d.Plan(t.Context(), "hub", Options{})
	if _, err := ref.d.Apply(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	want := ref.cloud.ids()
	if len(boundaries) < 30 {
		t.Fatalf("only %d boundaries: %v", len(boundaries), boundaries)
	}
	type killed struct{}
	for n := 1; n <= len(boundaries); n++ {
		w := newWorld(t, projectYAML)
		w.seed(t)
		count := 0
		w.d.Hook = func(string) {
			if count++; count == n {
				panic(killed{})
			}
		}
		func() {
			defer func() {
				if r := recover(); r != nil && r != (killed{}) {
					panic(r)
				}
			}()
			p, _ := w.d.Plan(t.Context(), "hub", Options{})
			w.d.Apply(t.Context(), p)
			t.Fatalf("not killed at %d", n)
		}()
		d := w.destroyer()
		p, err := d.Plan(t.Context(), "hub", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.Apply(t.Context(), p); err != nil {
			t.Fatalf("killed at %s, the rerun: %v", boundaries[n-1], err)
		}
		if got := w.cloud.ids(); !slices.Equal(got, want) {
			t.Errorf("killed at %s: left %v, want %v", boundaries[n-1], got, want)
		}
		w.neighbourIntact(t)
		r := w.record(t, "hub")
		if r.State != record.StateDestroyed || len(r.Retained) != 3 {
			t.Errorf("killed at %s: record %s retained %v", boundaries[n-1], r.State, r.Retained)
		}
		if log, _ := os.ReadFile(filepath.Join(w.dir, "backup.log")); string(log) != "hub\n" && !strings.HasPrefix(boundaries[n-1], "begin destroy hook") {
			t.Errorf("killed at %s: the hook ran %q", boundaries[n-1], log)
		}
	}
}

// A deployment found only by its tags (no record) is destroyed all the
// same and gets a record saying so; one with nothing anywhere has
// nothing to do.
func TestNoRecord(t *testing.T) {
	w := newWorld(t, projectYAML)
	w.cloud.add(&fres{typ: "stack", id: "stack-hub-net", tags: tagsOf("hub", "net")})
	w.cloud.add(&fres{typ: "snapshot", id: "snap-1", tags: tagsOf("hub", "net")})
	p, err := w.d.Plan(t.Context(), "hub", Options{})
	if err != nil || p.State != record.StateNew || !slices.Equal(actions(p.Items), []string{"stop stack net", "destroy stack stack-hub-net", "delete snapshot snap-1"}) {
		t.Fatalf("plan %v %v", actions(p.Items), err)
	}
	if _, err := w.d.Apply(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if ids := w.cloud.ids(); len(ids) != 0 || w.record(t, "hub").State != record.StateDestroyed {
		t.Errorf("left %v", ids)
	}
	w2 := newWorld(t, projectYAML)
	p, _ = w2.d.Plan(t.Context(), "other", Options{})
	if rep, err := w2.d.Apply(t.Context(), p); err != nil || rep.Applied || len(p.Hooks) != 0 {
		t.Errorf("nothing: %+v %v", rep, err)
	}
	if _, ok, _ := record.Load(w2.dir, "other"); ok {
		t.Error("a teardown of nothing wrote a record")
	}
}

// Personal deployments past their expiry are listed; others are not.
func TestExpired(t *testing.T) {
	w := newWorld(t, projectYAML)
	now := w.d.now()
	for name, exp := range map[string]int{"alice": -1, "bob": 1, "carol": -2} {
		r := record.New(name, "demo", "us-east-1", "123456789012")
		r.Template, r.Owner, r.State = "sandbox", name+"@example.com", record.StateDeployed
		r.Release = &record.Release{ID: "rel-1", UseCase: "u", Arch: "x86_64", Version: "1", Images: map[string]string{"us-east-1": "ami-12345678"},
			Templates: map[string]string{}, Parameters: map[string]string{}, Secrets: map[string]string{}}
		r.Expires = now.Add(timeHours(exp))
		if name == "carol" {
			r.State = record.StateDestroyed
		}
		record.Save(w.dir, r)
	}
	got, err := w.d.Expired()
	if err != nil || len(got) != 1 || got[0].Name != "alice" || got[0].Template != "sandbox" {
		t.Fatalf("expired %+v %v", got, err)
	}
	// It destroys as any deployment does: the template's units.
	w.cloud.add(&fres{typ: "stack", id: "stack-alice-net", tags: tagsOf("alice", "net")})
	p, err := w.d.Plan(t.Context(), "alice", Options{})
	if err != nil || p.Template != "sandbox" || len(p.Items) != 2 {
		t.Fatalf("plan %+v %v", p, err)
	}
	if _, err := w.d.Apply(t.Context(), p); err != nil || w.cloud.has("stack|stack-alice-net") {
		t.Fatalf("apply %v", err)
	}
	if got, _ := w.d.Expired(); len(got) != 0 {
		t.Errorf("still expired: %+v", got)
	}
}

func timeHours(n int) time.Duration { return time.Duration(n) * time.Hour }
