package output

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress shows long steps as they run. On a terminal each running step is
// a live line with a spinner and its elapsed time, and a finished step stays
// as a line with its outcome; elsewhere (CI logs, pipes) each step is a log
// line when it starts and one when it ends. It is safe for concurrent use,
// which fan-outs across regions need.
type Progress struct {
	log    *slog.Logger
	bars   *mpb.Progress // nil when not on a terminal
	mu     sync.Mutex
	live   []*mpb.Bar // bars not yet complete, aborted by Close
	closed bool       // after Close, steps are logged
	now    func() time.Time
}

// NewProgress writes live progress to w when tty is true, and otherwise logs
// steps through log.
func NewProgress(w io.Writer, tty bool, log *slog.Logger) *Progress {
	p := &Progress{log: log, now: time.Now}
	if tty {
		// tty says w is a terminal; mpb would only check its own guess.
		p.bars = mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithWidth(100),
			mpb.PopCompletedMode(), mpb.WithRefreshRate(200*time.Millisecond))
	}
	return p
}

// Step marks the start of a named step; call the returned function with the
// step's error (nil for success) when it ends.
func (p *Progress) Step(name string) func(error) {
	start := p.now()
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if p.bars == nil || closed {
		p.log.Info("start", "step", name)
		var once sync.Once
		return func(err error) {
			once.Do(func() {
				took := p.now().Sub(start).Round(100 * time.Millisecond)
				if errors.Is(err, context.Canceled) {
					// The SDK's text of a cancelled call says less.
					p.log.Warn("interrupted", "step", name, "elapsed", took)
					return
				}
				if err != nil {
					p.log.Error("failed", "step", name, "elapsed", took, "err", err)
					return
				}
				p.log.Info("done", "step", name, "elapsed", took)
			})
		}
	}
	var (
		mu     sync.Mutex
		status = " "
	)
	mark := decor.Any(func(decor.Statistics) string {
		mu.Lock()
		defer mu.Unlock()
		return status
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	bar := p.bars.New(1, mpb.SpinnerStyle(),
		mpb.PrependDecorators(mark, decor.Name(" "+name, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)),
		mpb.BarFillerOnComplete(""),
	)
	p.live = append(p.live, bar)
	var once sync.Once
	return func(err error) {
		once.Do(func() {
			mu.Lock()
			status = "✓"
			if err != nil {
				status = "✗"
			}
			mu.Unlock()
			bar.SetCurrent(1)
		})
	}
}

// Close ends the live display: steps whose end was never reported (an
// early return) are dropped, then it waits for the last drawing.
func (p *Progress) Close() {
	if p.bars == nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for _, b := range p.live {
		if !b.Completed() {
			b.Abort(false)
		}
	}
	p.mu.Unlock()
	p.bars.Wait()
}

// Discard is a Progress that shows nothing.
func Discard() *Progress {
	return &Progress{log: slog.New(slog.DiscardHandler), now: time.Now}
}

// Elapsed formats a duration for tables: "1m02s", "3.4s".
func Elapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}
