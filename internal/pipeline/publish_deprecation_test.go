package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/channel"
)

// deprecationCounter counts the pipeline's SetDeprecation calls.
type deprecationCounter struct {
	*backend
	mu      sync.Mutex
	regions []string
}

func (d *deprecationCounter) SetDeprecation(ctx context.Context, region, id string, t time.Time) error {
	d.mu.Lock()
	d.regions = append(d.regions, region)
	d.mu.Unlock()
	return d.backend.SetDeprecation(ctx, region, id, t)
}

// Without a deprecation policy, publish leaves images that have no
// deprecation time alone, and removes one that was set by hand.
func TestPublishWithoutDeprecationTouchesOnlyDeprecatedImages(t *testing.T) {
	w := newWorld(t, "", "0s")
	ctx := t.Context()
	w.cfg.UseCases["sandbox"].Publish.DeprecateAfter = 0
	counter := &deprecationCounter{backend: w.b}
	w.p.Backend = counter
	r := w.newRun(t)
	if _, err := w.p.Build(ctx, r); err != nil {
		t.Fatal(err)
	}
	if _, err := w.p.Test(ctx, r, false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.p.Replicate(ctx, r, nil); err != nil {
		t.Fatal(err)
	}
	copies, err := w.p.Copies(ctx, r, "local-b")
	if err != nil || len(copies) != 1 {
		t.Fatalf("copies in local-b: %v %v", copies, err)
	}
	if err := w.b.SetDeprecation(ctx, "local-b", copies[0].ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	if _, err := w.p.Publish(ctx, r, "latest"); err != nil {
		t.Fatal(err)
	}
	if len(counter.regions) != 1 || counter.regions[0] != "local-b" {
		t.Errorf("SetDeprecation called for %v, want only local-b", counter.regions)
	}
	m, err := channel.Load(w.cfg, "latest")
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range w.cfg.Regions {
		imgs, err := w.p.Copies(ctx, r, region)
		if err != nil || len(imgs) != 1 {
			t.Fatalf("%s: %v %v", region, imgs, err)
		}
		e, _ := m.Get("sandbox", region)
		if !imgs[0].Deprecation.IsZero() || e.DeprecationTime != "" {
			t.Errorf("%s: deprecation %s, manifest %q; want none", region, imgs[0].Deprecation, e.DeprecationTime)
		}
	}
}
