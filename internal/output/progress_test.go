package output

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the renderer's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestProgressTerminal(t *testing.T) {
	var out syncBuffer
	p := NewProgress(&out, true, slog.New(slog.DiscardHandler))
	a := p.Step("build [local-a]")
	b := p.Step("boot img-1")
	time.Sleep(300 * time.Millisecond)
	b(errors.New("boom"))
	a(nil)
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	s := out.String()
	for _, want := range []string{"build [local-a]", "boot img-1", "✓", "✗"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%q", want, s)
		}
	}
}

// A step whose end is never reported (an early return) must not hang Close.
func TestProgressCloseWithUnfinishedStep(t *testing.T) {
	var out syncBuffer
	p := NewProgress(&out, true, slog.New(slog.DiscardHandler))
	p.Step("never ends")
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on an unfinished step")
	}
}

func TestProgressLogLines(t *testing.T) {
	var out syncBuffer
	p := NewProgress(&out, false, slog.New(slog.NewTextHandler(&out, nil)))
	p.Step("replicate [local-b]")(nil)
	p.Close()
	if s := out.String(); !strings.Contains(s, "msg=start") || !strings.Contains(s, "msg=done") || !strings.Contains(s, "replicate [local-b]") {
		t.Fatalf("log lines: %s", s)
	}
}

func TestProgressCloseTwiceThenLogs(t *testing.T) {
	var out syncBuffer
	p := NewProgress(&out, true, slog.New(slog.NewTextHandler(&out, nil)))
	p.Step("a")(nil)
	p.Close()
	p.Close()
	p.Step("after close")(nil)
	if !strings.Contains(out.String(), `step="after close"`) {
		t.Fatalf("a step after Close was not logged:\n%s", out.String())
	}
}
