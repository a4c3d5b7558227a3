package claim

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
)

func store(t *testing.T, root string) *local.Backend {
	t.Helper()
	b, err := local.New(config.LocalBackend{}, root, []string{"r"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHold: one holder at a time across processes sharing the store (two
// backend values stand for two processes); a holder may claim again; a
// released claim is free; a lapsed claim is taken over.
func TestHold(t *testing.T) {
	root := t.TempDir()
	a, b := store(t, root), store(t, root)
	c := cloud.Claim{Region: "r", Name: "demo.sandbox.x86_64.latest", Holder: "kiln-20261121T093012Z-aaaaaa"}
	ctx := t.Context()

	work, release, err := Hold(ctx, a, c, time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	other := c
	other.Holder = "kiln-20261121T093013Z-bbbbbb"
	_, _, err = Hold(ctx, b, other, time.Minute, nil)
	var ce *cloud.ClaimedError
	if !errors.As(err, &ce) || !errors.Is(err, cloud.ErrClaimed) || ce.Holder != c.Holder {
		t.Fatalf("second holder: %v, want the claim refused naming %s", err, c.Holder)
	}
	// The same run (a resume elsewhere) holds it again.
	_, again, err := Hold(ctx, b, c, time.Minute, nil)
	if err != nil {
		t.Fatalf("the holder claiming again: %v", err)
	}
	again()
	release()
	if work.Err() == nil {
		t.Error("the work context lives on after the release")
	}
	_, release2, err := Hold(ctx, b, other, time.Minute, nil)
	if err != nil {
		t.Fatalf("after the release: %v", err)
	}
	release2()

	// A holder that died: its claim lapses with its lease.
	dead := c
	dead.Until = time.Now().Add(50 * time.Millisecond)
	if err := a.Claim(ctx, dead); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Hold(ctx, b, other, time.Minute, nil); !errors.Is(err, cloud.ErrClaimed) {
		t.Fatalf("before the lease ended: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	_, release3, err := Hold(ctx, b, other, time.Minute, nil)
	if err != nil {
		t.Fatalf("after the lease ended: %v", err)
	}
	// The old holder giving up does not free the new holder's claim.
	if err := a.Unclaim(ctx, dead); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Hold(ctx, a, dead, time.Minute, nil); !errors.Is(err, cloud.ErrClaimed) {
		t.Fatalf("the old holder took the claim back: %v", err)
	}
	release3()
}

// TestHoldRenewsAndLoses: a held claim is renewed before its lease ends;
// work whose claim another holder took over is cancelled with ErrLost.
func TestHoldRenewsAndLoses(t *testing.T) {
	root := t.TempDir()
	a, b := store(t, root), store(t, root)
	c := cloud.Claim{Region: "r", Name: "n", Holder: "kiln-20261121T093012Z-aaaaaa"}
	work, release, err := Hold(t.Context(), a, c, 300*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	other := cloud.Claim{Region: "r", Name: "n", Holder: "kiln-20261121T093013Z-bbbbbb", Until: time.Now().Add(time.Minute)}
	time.Sleep(500 * time.Millisecond) // past the first lease: renewed
	if err := b.Claim(t.Context(), other); !errors.Is(err, cloud.ErrClaimed) {
		t.Fatalf("a renewed claim was taken: %v", err)
	}
	// Force a takeover behind the holder's back (as after a long pause).
	if err := b.Unclaim(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if err := b.Claim(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	select {
	case <-work.Done():
		if !errors.Is(context.Cause(work), ErrLost) {
			t.Errorf("cancelled with %v, want ErrLost", context.Cause(work))
		}
	case <-time.After(2 * time.Second):
		t.Fatal("work goes on without its claim")
	}
}
