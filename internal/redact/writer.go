package redact

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Writer masks secrets in what is written through it. A write that ends
// with the beginning of a secret holds that tail back until the next write
// shows whether the secret follows; Flush writes what is held back. It is
// safe for concurrent use: writes go out whole and in order.
type Writer struct {
	mu      sync.Mutex
	w       io.Writer
	s       *Secrets
	pending []byte
}

// NewWriter returns a Writer masking the secrets in s (which may grow
// later) on their way to w.
func NewWriter(w io.Writer, s *Secrets) *Writer { return &Writer{w: w, s: s} }

// Write masks p and writes it, holding back a tail that may begin a
// secret. It reports len(p) written when w took everything it was given.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.s.Empty() && len(w.pending) == 0 {
		return w.w.Write(p)
	}
	text := string(w.pending) + string(p)
	w.s.mu.RLock()
	for _, v := range w.s.values {
		text = strings.ReplaceAll(text, v, Mask)
	}
	hold := w.s.pending(text)
	w.s.mu.RUnlock()
	w.pending = append(w.pending[:0], text[len(text)-hold:]...)
	if out := text[:len(text)-hold]; out != "" {
		if _, err := io.WriteString(w.w, out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes what is held back.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	_, err := w.w.Write(w.pending)
	w.pending = w.pending[:0]
	return err
}

// Unwrap returns the writer it writes to, so that callers can ask it
// whether it is a terminal.
func (w *Writer) Unwrap() io.Writer { return w.w }

// File masks the secrets in the file at path, in place: it writes the
// masked text to a temporary file beside it and renames that over it, so a
// crash leaves either the old file or the masked one. A file that holds no
// secret is left as it is.
func (s *Secrets) File(path string) error {
	if s.Empty() {
		return nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !s.Contains(string(data)) {
		return nil
	}
	return WriteFile(path, []byte(s.String(string(data))), 0o644)
}

// WriteFile writes data to path atomically (a temporary file in the same
// directory, then a rename).
func WriteFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, mode)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
