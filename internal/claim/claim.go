// Package claim holds a cloud claim (cloud.Claimer) for as long as a piece
// of work runs: it takes the claim with a lease, renews the lease while
// the work goes on, and gives the claim up at the end. A process that dies
// stops renewing; its claim lapses when the lease ends and another holder
// may take it over. A holder that loses its claim (it could not renew in
// time, and someone took it over) has its work cancelled.
package claim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
)

// DefaultLease is how long a claim lasts unless renewed. Renewals come
// every third of it, so a holder survives two failed renewals in a row.
const DefaultLease = 10 * time.Minute

// ErrLost is the cause of the cancellation of work whose claim was taken
// over by another holder.
var ErrLost = errors.New("the claim was lost to another holder")

// Hold claims c (c.Until is set from lease) and keeps renewing it. It
// returns a context for the work, cancelled with cause ErrLost should the
// claim be lost, and the function that ends the hold: it stops renewing
// and gives the claim up. A claim another holder has is an error matching
// cloud.ErrClaimed.
func Hold(ctx context.Context, b cloud.Claimer, c cloud.Claim, lease time.Duration, log *slog.Logger) (context.Context, func(), error) {
	if lease <= 0 {
		lease = DefaultLease
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c.Until = time.Now().Add(lease)
	if err := b.Claim(ctx, c); err != nil {
		return ctx, func() {}, err
	}
	work, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-work.Done():
				return
			case <-t.C:
				c.Until = time.Now().Add(lease)
				err := b.Claim(work, c)
				switch {
				case errors.Is(err, cloud.ErrClaimed):
					cancel(fmt.Errorf("%w: %v", ErrLost, err))
					return
				case err != nil && work.Err() == nil:
					log.Warn("could not renew the claim; trying again", "claim", c.Name, "lapses", c.Until, "err", err)
				}
			}
		}
	}()
	var once sync.Once
	release := func() {
		once.Do(func() {
			close(stop)
			wg.Wait()
			// Given up even when the work was cancelled (an interrupt): the
			// next release should not wait for the lease to end.
			gctx, done := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer done()
			if err := b.Unclaim(gctx, c); err != nil {
				log.Warn("could not give the claim up; it lapses by itself", "claim", c.Name, "at", c.Until, "err", err)
			}
			cancel(nil)
		})
	}
	return work, release, nil
}
