package debimage

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/kiln-images/kiln/internal/redact"
)

// maxLine caps one line of tool output; the rest of a longer line is
// dropped (progress bars can be long, and memory is not for them).
const maxLine = 64 << 10

// lineWriter is an io.Writer that copies everything to log and hands each
// complete line to fn, without its line ending and with anything up to a
// carriage return inside it dropped (what a terminal would overwrite). Close hands on a last unterminated line.
type lineWriter struct {
	mu  sync.Mutex
	log io.Writer // may be nil
	fn  func(line string)
	buf []byte
	// secrets, when it holds any, are masked in every line; the log then
	// gets whole lines, masked, instead of the bytes as they come.
	secrets *redact.Secrets
	raw     []byte // the current line's bytes for the log, uncut
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	if w.log != nil && w.secrets.Empty() {
		// The log is for people; a failed write to it must not fail
		// the build.
		w.log.Write(p)
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.add(p)
			break
		}
		w.add(p[:i])
		w.flush()
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) add(p []byte) {
	if !w.secrets.Empty() && w.log != nil {
		w.raw = append(w.raw, p...)
	}
	if room := maxLine - len(w.buf); room < len(p) {
		p = p[:max(room, 0)]
	}
	w.buf = append(w.buf, p...)
}

func (w *lineWriter) flush() {
	line := strings.TrimSuffix(string(w.buf), "\r")
	if i := strings.LastIndexByte(line, '\r'); i >= 0 {
		line = line[i+1:]
	}
	w.buf = w.buf[:0]
	if !w.secrets.Empty() {
		line = w.secrets.String(line)
		if w.log != nil {
			io.WriteString(w.log, w.secrets.String(string(w.raw))+"\n")
			w.raw = w.raw[:0]
		}
	}
	w.fn(line)
}

// Close passes on a last line that had no newline.
func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.flush()
	}
	return nil
}

// ring keeps the last n lines added.
type ring struct {
	n     int
	lines []string
}

func (r *ring) add(s string) {
	if len(r.lines) == r.n {
		r.lines = append(r.lines[:0], r.lines[1:]...)
	}
	r.lines = append(r.lines, s)
}

func (r *ring) String() string { return strings.Join(r.lines, "\n") }

func (r *ring) reset() { r.lines = r.lines[:0] }
