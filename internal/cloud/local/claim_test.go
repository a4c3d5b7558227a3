package local

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// TestClaimOfADeadProcessLapses: on the machine that took it, a claim whose
// process is gone (a kiln killed mid-release) is free at once; a live
// one holds for its lease.
func TestClaimOfADeadProcessLapses(t *testing.T) {
	b := newBackend(t, config.LocalBackend{}, "r")
	ctx := t.Context()
	a := cloud.Claim{Region: "r", Name: "demo.sandbox.x86_64.latest", Holder: "kiln-20261121T093012Z-aaaaaa", Until: time.Now().Add(time.Hour)}
	other := a
	other.Holder = "kiln-20261121T093013Z-bbbbbb"
	if err := b.Claim(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(ctx, other); !errors.Is(err, cloud.ErrClaimed) {
		t.Fatalf("a live claim: %v", err)
	}
	// Make the claim a dead process's.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	p, _ := readProc(pid)
	cmd.Wait()
	r, _ := b.region("r")
	path := r.claimPath(a.Name)
	var rec claimRecord
	data, _ := os.ReadFile(path)
	json.Unmarshal(data, &rec)
	rec.PID, rec.PIDStart = pid, p.start
	data, _ = json.Marshal(rec)
	os.WriteFile(path, data, 0o644)
	if err := b.Claim(ctx, other); err != nil {
		t.Fatalf("the claim of a dead process: %v", err)
	}
}
