package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

var _ cloud.Claimer = (*Backend)(nil)

// A claim is a small file in the region's claims/ directory, read and
// written under the region's lock: every process using the store (on this
// machine, or on another sharing the filesystem) sees it. It records the
// process that took it, so that on the same machine a claim whose process
// is gone (a crashed kiln) lapses at once instead of at the end of its
// lease; from another machine only the lease tells.
type claimRecord struct {
	Name     string            `json:"name"`
	Holder   string            `json:"holder"`
	Until    time.Time         `json:"until"`
	Tags     map[string]string `json:"tags,omitempty"`
	Host     string            `json:"host,omitempty"`
	PID      int               `json:"pid,omitempty"`
	PIDStart uint64            `json:"pid_start,omitempty"`
}

// live reports whether the claim still holds at now.
func (c *claimRecord) live(now time.Time) bool {
	if !now.Before(c.Until) {
		return false
	}
	if host, _ := os.Hostname(); c.Host != "" && c.Host == host && c.PID > 0 {
		p, err := readProc(c.PID)
		if err != nil || p.start != c.PIDStart || !p.alive() {
			return false // its process is gone
		}
	}
	return true
}

func (r *region) claimPath(name string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(r.dir, "claims", hex.EncodeToString(sum[:12])+".json")
}

// Claim takes (or renews) the claim; see cloud.Claimer.
func (b *Backend) Claim(ctx context.Context, c cloud.Claim) error {
	r, err := b.region(c.Region)
	if err != nil {
		return err
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	path := r.claimPath(c.Name)
	cur, err := readClaim(path)
	if err != nil {
		return fmt.Errorf("local: claim %s: %w", c.Name, err)
	}
	if cur != nil && cur.Holder != c.Holder && cur.live(b.now()) {
		return &cloud.ClaimedError{Name: c.Name, Holder: cur.Holder, Until: cur.Until}
	}
	rec := claimRecord{Name: c.Name, Holder: c.Holder, Until: c.Until.UTC(), Tags: c.Tags, PID: os.Getpid()}
	rec.Host, _ = os.Hostname()
	if p, err := readProc(rec.PID); err == nil {
		rec.PIDStart = p.start
	}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return writeAtomic(r.tmpDir(), path, append(data, '\n'), time.Time{})
}

// Unclaim gives up the claim if c.Holder holds it.
func (b *Backend) Unclaim(ctx context.Context, c cloud.Claim) error {
	r, err := b.region(c.Region)
	if err != nil {
		return err
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	path := r.claimPath(c.Name)
	cur, err := readClaim(path)
	if err != nil || cur == nil || cur.Holder != c.Holder {
		return err
	}
	return removeDurably(path)
}

// readClaim reads a claim file; an absent one is nil.
func readClaim(path string) (*claimRecord, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var c claimRecord
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("claim record %s: %w", path, err)
	}
	return &c, nil
}
