package download

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kiln-images/kiln/internal/distribute"
	"github.com/kiln-images/kiln/internal/lru"
	"github.com/kiln-images/kiln/internal/ratelimit"
	"github.com/kiln-images/kiln/internal/server"
)

// Options configure a handler.
type Options struct {
	Limiter *ratelimit.Limiter // nil: no limit
	Allow   ratelimit.Networks // never limited
	// MaxClients bounds the downloads remembered for resumed ranges;
	// default 100000.
	MaxClients int
	// MinRate is the slowest a download may go before its connection is
	// cut (the client resumes with a range request); default 256 KiB/s.
	MinRate int64
	// Reload is how often the tree's current index is looked for; default 1s.
	Reload time.Duration
	Log    *slog.Logger
	Now    func() time.Time
}

// Handler serves one tree.
type Handler struct {
	dir  string
	opts Options
	log  *slog.Logger

	snap atomic.Pointer[snapshot]

	mu       sync.Mutex
	states   map[string]*fileState // path -> verification state
	sessions *lru.Map[session, int64]
}

// snapshot is one generation of the tree's index.
type snapshot struct {
	gen     string
	streams map[string][]byte // served from memory
	files   map[string]entry  // images/... -> what the index says
	loaded  time.Time
	err     error // why the index could not be read
}

type entry struct {
	sha256 string
	size   int64
}

// fileState is what the handler knows of a file on disk: verified when
// the file had stamp.
type fileState struct {
	mu       sync.Mutex
	sha256   string
	verified bool
	stamp    stamp
}

// stamp identifies a file's content without reading it: a write changes
// its modification or change time, a replacement its inode.
type stamp struct {
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

// session is a client's download of one file, for resumed ranges.
type session struct {
	client netip.Prefix
	path   string
}

// New returns a handler of the tree in dir, with its current index
// loaded (or the reason none is, which health reports).
func New(dir string, opts Options) *Handler {
	if opts.MinRate <= 0 {
		opts.MinRate = 256 << 10
	}
	if opts.Reload <= 0 {
		opts.Reload = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxClients <= 0 {
		opts.MaxClients = 100_000
	}
	h := &Handler{dir: dir, opts: opts, log: opts.Log, states: map[string]*fileState{}, sessions: lru.New[session, int64](opts.MaxClients)}
	h.reload()
	return h
}

// Mount mounts the handler and its health check on s.
func (h *Handler) Mount(s *server.Server) {
	s.Handle("GET /streams/", h)
	s.Handle("GET /images/", h)
	s.AddCheck("downloads", h.Check)
}

// Check reports whether the tree has an index the handler serves.
func (h *Handler) Check(context.Context) error {
	snap := h.snap.Load()
	if snap.err != nil {
		return snap.err
	}
	return nil
}

// Run reloads the index when the tree switches to a new generation, and
// verifies the files of each new index in the background, until ctx ends.
func (h *Handler) Run(ctx context.Context) {
	go h.warm(ctx, h.snap.Load())
	t := time.NewTicker(h.opts.Reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			old := h.snap.Load()
			if h.reload() {
				h.log.Info("index reloaded", "tree", h.dir, "generation", h.snap.Load().gen, "previous", old.gen)
				go h.warm(ctx, h.snap.Load())
			}
		}
	}
}

// reload loads the tree's current generation if it is not the loaded one.
func (h *Handler) reload() bool {
	gen, err := os.Readlink(filepath.Join(h.dir, "streams"))
	if cur := h.snap.Load(); cur != nil && err == nil && cur.gen == gen && cur.err == nil {
		return false
	}
	snap := &snapshot{gen: gen, loaded: h.opts.Now(), streams: map[string][]byte{}, files: map[string]entry{}}
	if err != nil {
		snap.err = fmt.Errorf("%s has no index yet (no streams/v1/index.json): publish a release with exports or run kiln index --apply", h.dir)
		if cur := h.snap.Load(); cur == nil || cur.err != nil {
			h.snap.Store(snap)
			return true
		}
		return false // keep serving what was loaded
	}
	// Everything comes from the one generation the link named, so the
	// index, products and signatures served always belong together.
	gf := genFetcher{dir: filepath.Join(h.dir, gen)}
	cat, err := distribute.LoadCatalog(context.Background(), gf, nil)
	if err != nil {
		h.log.Error("cannot load the index; serving the previous one", "tree", h.dir, "err", err)
		if cur := h.snap.Load(); cur == nil {
			snap.err = err
			h.snap.Store(snap)
		}
		return false
	}
	for p, data := range cat.Files {
		snap.streams[p] = data
	}
	for _, e := range cat.Entries() {
		snap.files[e.Path] = entry{sha256: e.SHA256, size: e.Size}
	}
	sigs := []string{distribute.IndexPath}
	for _, e := range cat.Index.Index {
		sigs = append(sigs, e.Path)
	}
	for _, p := range sigs {
		if sig, err := gf.Fetch(context.Background(), p+distribute.SigSuffix, 16<<10); err == nil {
			snap.streams[p+distribute.SigSuffix] = sig
		}
	}
	h.snap.Store(snap)
	return true
}

// genFetcher reads the streams files of one generation directory of a
// local tree (package distribute's layout: <generation>/v1/FILE).
type genFetcher struct{ dir string }

func (g genFetcher) Name() string { return g.dir }

func (g genFetcher) Fetch(ctx context.Context, p string, limit int64) ([]byte, error) {
	rel, ok := strings.CutPrefix(p, "streams/")
	if !ok || strings.Contains(rel, "..") {
		return nil, fmt.Errorf("%s is not a streams file", p)
	}
	root, err := os.OpenRoot(g.dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(rel))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, limit)
	}
	return data, nil
}

// warm verifies every file of snap, one at a time, so that first requests
// find them verified.
func (h *Handler) warm(ctx context.Context, snap *snapshot) {
	for p, e := range snap.files {
		if ctx.Err() != nil || h.snap.Load() != snap {
			return
		}
		f, st, err := h.open(p)
		if err != nil {
			h.log.Warn("indexed file missing", "path", p, "err", err)
			continue
		}
		if err := h.verify(ctx, p, e, f, st); err != nil {
			h.log.Error("indexed file does not match the index; it will not be served", "path", p, "err", err)
		}
		f.Close()
	}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	snap := h.snap.Load()
	data, isStreams := snap.streams[p]
	e, isFile := snap.files[p]
	if !isStreams && !isFile {
		http.NotFound(w, r)
		return
	}
	client := server.Client(r)
	key := ratelimit.Key(client)
	resumed := isFile && r.Header.Get("Range") != "" && h.resuming(key, p, e.size)
	if lim := h.opts.Limiter; lim != nil && !resumed && !h.opts.Allow.Contains(client) {
		if ok, retry := lim.Allow(key, h.opts.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
			http.Error(w, fmt.Sprintf("too many requests: %d per %s per client; retry in %s", lim.Limit(), lim.Window(), retry), http.StatusTooManyRequests)
			return
		}
	}
	h.setHeaders(w, p, isFile)
	if isStreams {
		w.Header().Set("ETag", `"`+sha(data)+`"`)
		http.ServeContent(w, r, path.Base(p), time.Time{}, bytes.NewReader(data))
		return
	}
	h.serveFile(w, r, key, p, e)
}

// serveFile sends an indexed file that is still the file the index
// describes.
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, key netip.Prefix, p string, e entry) {
	f, st, err := h.open(p)
	if err != nil {
		h.log.Error("indexed file cannot be opened", "path", p, "err", err)
		http.Error(w, "indexed file missing", http.StatusInternalServerError)
		return
	}
	defer f.Close()
	if err := h.verify(r.Context(), p, e, f, st); err != nil {
		h.log.Error("refusing a file that no longer matches the index", "path", p, "err", err)
		http.Error(w, "the file does not match the index; the server refuses to send it", http.StatusInternalServerError)
		return
	}
	w.Header().Set("ETag", `"`+e.sha256+`"`)
	// A download goes on as long as it moves at MinRate; a stalled one is
	// cut and resumed with a range request.
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(h.opts.Now().Add(time.Minute + time.Duration(e.size/h.opts.MinRate)*time.Second))
	cw := &countingWriter{ResponseWriter: w}
	http.ServeContent(cw, r, path.Base(p), time.Time{}, f)
	if cw.status == http.StatusOK || cw.status == http.StatusPartialContent {
		h.served(key, p, cw.n)
	}
	if after, err := fileStamp(f); err != nil || after != st {
		h.log.Error("file changed while it was being sent; cutting the connection", "path", p)
		h.forget(p)
		panic(http.ErrAbortHandler)
	}
}

// resuming reports whether the client already downloads p and has not
// fetched it twice over yet.
func (h *Handler) resuming(key netip.Prefix, p string, size int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	n, ok := h.sessions.Get(session{key, p})
	return ok && n < 2*max(size, 1)
}

// served records bytes of p sent to the client.
func (h *Handler) served(key netip.Prefix, p string, n int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, _ := h.sessions.Get(session{key, p})
	h.sessions.Put(session{key, p}, prev+n)
}

// open opens an indexed file through the tree's root.
func (h *Handler) open(p string) (*os.File, stamp, error) {
	root, err := os.OpenRoot(h.dir)
	if err != nil {
		return nil, stamp{}, err
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(p))
	if err != nil {
		return nil, stamp{}, err
	}
	st, err := fileStamp(f)
	if err != nil {
		f.Close()
		return nil, stamp{}, err
	}
	return f, st, nil
}

func fileStamp(f *os.File) (stamp, error) {
	fi, err := f.Stat()
	if err != nil {
		return stamp{}, err
	}
	if !fi.Mode().IsRegular() {
		return stamp{}, fmt.Errorf("%s is not a regular file", f.Name())
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return stamp{}, errors.New("no inode information")
	}
	return stamp{
		dev: uint64(sys.Dev), ino: sys.Ino, size: fi.Size(),
		mtime: sys.Mtim.Nano(), ctime: sys.Ctim.Nano(),
	}, nil
}

// verify checks that f, opened with stamp st, is the file the index
// describes: from the record of an earlier check when nothing changed,
// else by hashing it.
func (h *Handler) verify(ctx context.Context, p string, e entry, f *os.File, st stamp) error {
	fs := h.state(p)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.verified && fs.stamp == st && fs.sha256 == e.sha256 {
		return nil
	}
	fs.verified = false
	if st.size != e.size {
		return fmt.Errorf("%s is %d bytes, the index says %d", p, st.size, e.size)
	}
	hs := sha256.New()
	if _, err := io.Copy(hs, io.NewSectionReader(f, 0, st.size)); err != nil {
		return fmt.Errorf("read %s: %w", p, err)
	}
	got := hex.EncodeToString(hs.Sum(nil))
	if got != e.sha256 {
		return fmt.Errorf("%s has sha256 %s, the index says %s", p, got, e.sha256)
	}
	// A write while it was hashed leaves it unverified.
	if after, err := fileStamp(f); err != nil || after != st {
		return fmt.Errorf("%s changed while it was being checked", p)
	}
	fs.sha256, fs.stamp, fs.verified = e.sha256, st, true
	return nil
}

func (h *Handler) state(p string) *fileState {
	h.mu.Lock()
	defer h.mu.Unlock()
	fs, ok := h.states[p]
	if !ok {
		fs = &fileState{}
		h.states[p] = fs
	}
	return fs
}

func (h *Handler) forget(p string) {
	fs := h.state(p)
	fs.mu.Lock()
	fs.verified = false
	fs.mu.Unlock()
}

// setHeaders sets the content type (from the file name, never sniffed)
// and caching: files under images/ never change; streams files do.
func (h *Handler) setHeaders(w http.ResponseWriter, p string, isFile bool) {
	w.Header().Set("Content-Type", distribute.ContentType(p))
	if isFile {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// countingWriter counts the body bytes of a response, keeping ReadFrom
// (sendfile) and Unwrap.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.n += n
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
