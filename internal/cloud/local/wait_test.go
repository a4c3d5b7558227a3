package local

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// TestWaitImage: available returns at once, a pending image that nobody
// finishes times out naming what it waited for, and a pending image that
// another caller finishes is returned once available.
func TestWaitImage(t *testing.T) {
	ctx := context.Background()
	b, err := New(config.LocalBackend{}, t.TempDir(), []string{"r"}, WithWaitTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	img := seed(t, b, "r", "img", nil, 1024)
	if got, err := b.WaitImage(ctx, "r", img.ID); err != nil || got.ID != img.ID || got.State != cloud.StateAvailable {
		t.Errorf("WaitImage(available) = %+v, %v", got, err)
	}

	r, _ := b.region("r")
	rec, err := r.readRecord(img.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.ID, rec.State = randomImageID(), cloud.StatePending
	if err := r.writeRecord(rec); err != nil {
		t.Fatal(err)
	}
	_, err = b.WaitImage(ctx, "r", rec.ID)
	var te *cloud.TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), rec.ID) {
		t.Errorf("WaitImage(pending) = %v, want a timeout naming %s", err, rec.ID)
	}

	go func() {
		time.Sleep(300 * time.Millisecond)
		rec.State = cloud.StateAvailable
		r.writeRecord(rec)
	}()
	if got, err := b.WaitImage(ctx, "r", rec.ID); err != nil || got.State != cloud.StateAvailable {
		t.Errorf("WaitImage(finished meanwhile) = %+v, %v", got, err)
	}

	if err := b.DeleteImage(ctx, "r", rec.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WaitImage(ctx, "r", rec.ID); !errors.Is(err, cloud.ErrNotFound) {
		t.Errorf("WaitImage(deleted) = %v, want cloud.ErrNotFound", err)
	}
}
