package localunit

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/deploy"
)

// A process unit's data directory is kept by a teardown: moved out of the
// unit before Destroy, listed by Retained with the unit's tags, removed by
// Delete.
func TestKeepDataDir(t *testing.T) {
	o := testOptions(t)
	k := NewProcess(o).(*kind)
	ctx := t.Context()
	// The process writes into its data directory, then serves.
	cfg := &config.Unit{Process: &config.ProcessUnit{
		Command:     []string{"/bin/sh", "-c", `echo kept > "$KILN_DATA_DIR/db" && exec ` + python + ` -m http.server --bind 127.0.0.1 "$KILN_PORT_HTTP"`},
		Ports:       []string{"http"},
		Restart:     "never",
		StopTimeout: config.Duration(5 * time.Second),
	}}
	u := testUnit(t.TempDir(), "dev", "db", cfg, "v1")
	neighbour := testUnit(t.TempDir(), "prod", "db", cfg, "v1")
	for _, x := range []deploy.Unit{u, neighbour} {
		if _, err := k.Apply(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	// t.Context() is done by the time cleanups run.
	t.Cleanup(func() { k.Destroy(context.Background(), u); k.Destroy(context.Background(), neighbour) })

	parts, err := k.Parts(ctx, u)
	if err != nil || len(parts) != 1 || parts[0].Type != PartDataDir || parts[0].Parent != "dev/db" || parts[0].Tags[cloud.TagDeployment] != "dev" {
		t.Fatalf("parts %+v %v", parts, err)
	}
	// A running unit is not taken apart.
	if _, err := k.Keep(ctx, u, parts[0]); !errors.Is(err, cloud.ErrNotYet) {
		t.Fatalf("keep of a running unit: %v", err)
	}
	if err := k.SetRunning(ctx, u, false); err != nil {
		t.Fatal(err)
	}
	kept, err := k.Keep(ctx, u, parts[0])
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(kept.ID, "db")); err != nil || string(data) != "kept\n" {
		t.Fatalf("kept data %q %v", data, err)
	}
	if !kept.Retain || kept.Tags[cloud.TagRetain] != "true" || strings.HasPrefix(kept.ID, filepath.Join(o.StateDir, "deployments")) {
		t.Errorf("kept %+v", kept)
	}
	if err := k.Destroy(ctx, u); err != nil {
		t.Fatal(err)
	}
	r := Retained{StateDir: o.StateDir}
	found, err := r.Find(ctx, "local-a", map[string]string{cloud.TagDeployment: "dev"})
	if err != nil || len(found) != 1 || found[0].ID != kept.ID || found[0].Type != PartDataDir {
		t.Fatalf("retained %+v %v", found, err)
	}
	if other, _ := r.Find(ctx, "local-a", map[string]string{cloud.TagDeployment: "prod"}); len(other) != 0 {
		t.Errorf("prod has kept parts: %+v", other)
	}
	if err := r.Delete(ctx, found[0]); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, found[0]); err != nil {
		t.Errorf("delete again: %v", err)
	}
	if _, err := os.Stat(filepath.Join(o.StateDir, retainedDir, "dev")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("retained/dev remains: %v", err)
	}
	if err := r.Delete(ctx, deploy.Resource{Type: PartDataDir, ID: "/etc/passwd"}); !errors.Is(err, cloud.ErrInvalid) {
		t.Errorf("delete outside the retained directory: %v", err)
	}
	// The neighbour runs on, with its data.
	if st, _ := k.Status(ctx, neighbour); st.State != deploy.UnitRunning {
		t.Errorf("neighbour %s", st.State)
	}
}

// A VM's disk is kept as a standalone qcow2 file: it no longer needs the
// image it was an overlay of. Keep again after a crash returns the copy.
func TestKeepOverlay(t *testing.T) {
	o := testOptions(t)
	o.ReadyTimeout = 3 * time.Minute
	k := NewVM(o, oneDisk(shellDisk(t)), "tcg").(*kind)
	ctx := t.Context()
	u := vmUnit(t.TempDir(), "dev", 0)
	if _, err := k.Apply(ctx, u); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Destroy(context.Background(), u) })
	if err := k.SetRunning(ctx, u, false); err != nil {
		t.Fatal(err)
	}
	parts, err := k.Parts(ctx, u)
	if err != nil || len(parts) != 1 || parts[0].Type != PartOverlay {
		t.Fatalf("parts %+v %v", parts, err)
	}
	kept, err := k.Keep(ctx, u, parts[0])
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("qemu-img", "info", kept.ID).CombinedOutput()
	if err != nil || strings.Contains(string(out), "backing file") || !strings.Contains(string(out), "file format: qcow2") {
		t.Fatalf("kept disk: %v\n%s", err, out)
	}
	again, err := k.Keep(ctx, u, parts[0])
	if err != nil || again.ID != kept.ID {
		t.Fatalf("keep again: %+v %v", again, err)
	}
	if err := k.Destroy(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(kept.ID); err != nil {
		t.Errorf("destroy removed the kept disk: %v", err)
	}
	if _, err := k.Keep(ctx, u, parts[0]); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("keep of a destroyed unit: %v", err)
	}
}
