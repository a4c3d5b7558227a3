package download

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/distribute"
	"github.com/kiln-images/kiln/internal/minisign"
	"github.com/kiln-images/kiln/internal/ratelimit"
	"github.com/kiln-images/kiln/internal/server"
)

// tree publishes one release of sandbox into a new local tree and
// returns the tree's directory and the release's qcow2 path in it.
func tree(t *testing.T) (string, distribute.Item) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dist")
	src := t.TempDir()
	key, _ := minisign.GenerateKey(nil)
	var files []distribute.SourceFile
	for _, f := range []struct {
		format string
		n      int
	}{{"qcow2", 300 << 10}, {"raw", 64 << 10}} {
		data := make([]byte, f.n)
		rand.Read(data)
		p := filepath.Join(src, f.format)
		os.WriteFile(p, data, 0o444)
		sum := sha256.Sum256(data)
		files = append(files, distribute.SourceFile{Format: f.format, Source: distribute.Source{File: p}, SHA256: hex.EncodeToString(sum[:])})
	}
	pub := &distribute.Publisher{Store: &distribute.LocalStore{Dir: dir}, Project: "demo", Key: key}
	rel := distribute.Release{Channel: "latest", UseCase: "sandbox", Arch: "x86_64", Version: "1.0", AssetID: "kiln-a",
		Created: time.Date(2026, 11, 21, 9, 30, 12, 0, time.UTC), Files: files}
	if _, err := pub.Publish(context.Background(), []distribute.Release{rel}, true); err != nil {
		t.Fatal(err)
	}
	cat, err := distribute.LoadCatalog(context.Background(), distribute.DirFetcher{Dir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range cat.Entries() {
		if e.FType == "disk-kvm.img" {
			return dir, *e.Item
		}
	}
	t.Fatal("no qcow2 item")
	return "", distribute.Item{}
}

// serve starts the server with the tree's handler mounted, on httptest.
func serve(t *testing.T, h *Handler, proxies ...netip.Prefix) *httptest.Server {
	t.Helper()
	s := server.New(server.Config{TrustedProxies: proxies})
	h.Mount(s)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func TestServesIndexedFiles(t *testing.T) {
	dir, q := tree(t)
	ts := serve(t, New(dir, Options{}))
	whole, _ := os.ReadFile(filepath.Join(dir, q.Path))

	resp, body := get(t, ts.URL+"/"+q.Path)
	if resp.StatusCode != 200 || string(body) != string(whole) {
		t.Fatalf("GET: %s, %d bytes", resp.Status, len(body))
	}
	for k, want := range map[string]string{
		"ETag": `"` + q.SHA256 + `"`, "Content-Type": "application/x-qemu-disk", "Accept-Ranges": "bytes",
		"Content-Length": strconv.Itoa(len(whole)), "X-Content-Type-Options": "nosniff",
		"Cache-Control": "public, max-age=31536000, immutable",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	// Ranges.
	resp, body = get(t, ts.URL+"/"+q.Path, "Range", "bytes=100-199")
	if resp.StatusCode != 206 || string(body) != string(whole[100:200]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(whole)) {
		t.Fatalf("range: %s %q", resp.Status, resp.Header.Get("Content-Range"))
	}
	resp, body = get(t, ts.URL+"/"+q.Path, "Range", fmt.Sprintf("bytes=%d-", len(whole)-10))
	if resp.StatusCode != 206 || string(body) != string(whole[len(whole)-10:]) {
		t.Fatalf("open range: %s", resp.Status)
	}
	// Conditional requests.
	if resp, _ := get(t, ts.URL+"/"+q.Path, "If-None-Match", `"`+q.SHA256+`"`); resp.StatusCode != 304 {
		t.Errorf("If-None-Match with the ETag: %s", resp.Status)
	}
	if resp, body := get(t, ts.URL+"/"+q.Path, "Range", "bytes=0-9", "If-Range", `"other"`); resp.StatusCode != 200 || len(body) != len(whole) {
		t.Errorf("If-Range with another ETag: %s, %d bytes; want the whole file", resp.Status, len(body))
	}
	if resp, _ := get(t, ts.URL+"/"+q.Path, "If-Match", `"other"`); resp.StatusCode != 412 {
		t.Errorf("If-Match with another ETag: %s", resp.Status)
	}
	// Malformed and unsatisfiable ranges.
	for _, r := range []string{"bytes=zz", "bytes=5-2", "lines=1-2", fmt.Sprintf("bytes=%d-", len(whole)+5)} {
		if resp, _ := get(t, ts.URL+"/"+q.Path, "Range", r); resp.StatusCode != 416 {
			t.Errorf("Range %q: %s, want 416", r, resp.Status)
		}
	}
	// Streams files, with their content types.
	resp, body = get(t, ts.URL+"/streams/v1/index.json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"index:1.0"`) {
		t.Fatalf("index: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	if resp, _ := get(t, ts.URL+"/streams/v1/index.json.minisig"); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("index signature: %s", resp.Status)
	}
	vdir := filepath.Dir(q.Path)
	if resp, _ := get(t, ts.URL+"/"+vdir+"/SHA256SUMS"); resp.StatusCode != 200 {
		t.Errorf("SHA256SUMS: %s", resp.Status)
	}
	// HEAD.
	hr, err := http.Head(ts.URL + "/" + q.Path)
	if err != nil || hr.StatusCode != 200 || hr.ContentLength != int64(len(whole)) {
		t.Errorf("HEAD: %v %v", hr, err)
	}
}

func TestServesNothingElse(t *testing.T) {
	dir, q := tree(t)
	ts := serve(t, New(dir, Options{}))
	os.WriteFile(filepath.Join(dir, "images", "sandbox", "secret.txt"), []byte("not indexed"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "images", "passwd"))
	vdir := filepath.Dir(q.Path)
	for _, p := range []string{
		"/images/sandbox/secret.txt", "/images/passwd", "/images/", "/images/sandbox/x86_64/1.0/",
		"/" + vdir + "/../../../../.kiln-dist", "/" + vdir + "/%2e%2e/%2e%2e/x", "/streams/v1/../../.kiln-dist",
		"/streams/v1/", "/streams/", "/.kiln-dist", "/.generations/", "//" + q.Path, "/" + q.Path + "/",
		"/" + vdir + "/./SHA256SUMS",
	} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL, nil)
		req.URL.Opaque = p // sent as is, not cleaned by the client
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
	if resp, _ := http.Post(ts.URL+"/"+q.Path, "text/plain", strings.NewReader("x")); resp.StatusCode != 405 {
		t.Errorf("POST: %s", resp.Status)
	}
}

func TestRefusesChangedFiles(t *testing.T) {
	dir, q := tree(t)
	h := New(dir, Options{})
	ts := serve(t, h)
	if resp, _ := get(t, ts.URL+"/"+q.Path); resp.StatusCode != 200 {
		t.Fatalf("first GET: %s", resp.Status)
	}
	file := filepath.Join(dir, q.Path)
	data, _ := os.ReadFile(file)
	// The same size, other content, written in place (the file is a hard
	// link of a read-only store blob here: replace it the way a careless
	// admin's editor would).
	data[1000] ^= 0xff
	os.Remove(file)
	os.WriteFile(file, data, 0o644)
	resp, body := get(t, ts.URL+"/"+q.Path)
	if resp.StatusCode != 500 || strings.Contains(string(body), string(data[:100])) {
		t.Fatalf("changed file: %s", resp.Status)
	}
	if resp, _ := get(t, ts.URL+"/"+q.Path, "Range", "bytes=0-9"); resp.StatusCode != 500 {
		t.Fatalf("range of a changed file: %s", resp.Status)
	}
	// Truncated.
	os.Truncate(file, 10)
	if resp, _ := get(t, ts.URL+"/"+q.Path); resp.StatusCode != 500 {
		t.Fatalf("truncated file: %s", resp.Status)
	}
	// Restored: served again.
	data[1000] ^= 0xff
	os.Remove(file)
	os.WriteFile(file, data, 0o644)
	if resp, body := get(t, ts.URL+"/"+q.Path); resp.StatusCode != 200 || len(body) != len(data) {
		t.Fatalf("restored file: %s", resp.Status)
	}
}

func TestRateLimitAndResumes(t *testing.T) {
	dir, q := tree(t)
	lim := ratelimit.New(3, time.Minute, 100)
	proxy := netip.MustParsePrefix("127.0.0.0/8")
	ts := serve(t, New(dir, Options{Limiter: lim, Allow: ratelimit.Networks{netip.MustParsePrefix("203.0.113.0/24")}}), proxy)
	from := func(client string, hdr ...string) *http.Response {
		resp, _ := get(t, ts.URL+"/"+q.Path, append([]string{"X-Forwarded-For", "198.51.100.200, " + client}, hdr...)...)
		return resp
	}
	// A download, then resumptions: the first counts, the rest do not.
	if r := from("192.0.2.1", "Range", "bytes=0-999"); r.StatusCode != 206 {
		t.Fatalf("first range: %s", r.Status)
	}
	for i := range 20 {
		if r := from("192.0.2.1", "Range", fmt.Sprintf("bytes=%d-%d", 1000+i*1000, 1999+i*1000)); r.StatusCode != 206 {
			t.Fatalf("resumption %d: %s", i, r.Status)
		}
	}
	// Two more requests of the budget of 3, then 429 with Retry-After.
	for i := range 2 {
		if r, _ := get(t, ts.URL+"/streams/v1/index.json", "X-Forwarded-For", "192.0.2.1"); r.StatusCode != 200 {
			t.Fatalf("request %d: %s", i+2, r.Status)
		}
	}
	r, _ := get(t, ts.URL+"/streams/v1/index.json", "X-Forwarded-For", "192.0.2.1")
	if r.StatusCode != 429 {
		t.Fatalf("request 4: %s", r.Status)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 120 { // the estimate spreads the previous window evenly: at most two windows
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	// Resuming the started download still works; a new one does not.
	if r := from("192.0.2.1", "Range", "bytes=50000-"); r.StatusCode != 206 {
		t.Fatalf("resumption over budget: %s", r.Status)
	}
	if r := from("192.0.2.1"); r.StatusCode != 429 {
		t.Fatalf("a whole GET over budget: %s", r.Status)
	}
	// Two whole copies later, ranges count again.
	for range 2 {
		from("192.0.2.1", "Range", "bytes=0-")
	}
	if r := from("192.0.2.1", "Range", "bytes=0-"); r.StatusCode != 429 {
		t.Fatalf("ranges after twice the file: %s", r.Status)
	}
	// Allow-listed clients are never limited.
	for i := range 10 {
		if r := from("203.0.113.9"); r.StatusCode != 200 {
			t.Fatalf("allow-listed request %d: %s", i, r.Status)
		}
	}
}

// A new generation of the tree is picked up; what the new index no
// longer names is 404 at once.
func TestReloadsNewIndex(t *testing.T) {
	dir, q := tree(t)
	h := New(dir, Options{})
	ts := serve(t, h)
	if resp, _ := get(t, ts.URL+"/"+q.Path); resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	// Republish with keep 1 and a newer version: 1.0 leaves the index.
	key, _ := minisign.GenerateKey(nil)
	src := filepath.Join(t.TempDir(), "q")
	os.WriteFile(src, []byte("new disk"), 0o444)
	pub := &distribute.Publisher{Store: &distribute.LocalStore{Dir: dir}, Project: "demo", Key: key, Retention: distribute.Retention{Keep: 1}}
	rel := distribute.Release{Channel: "latest", UseCase: "sandbox", Arch: "x86_64", Version: "1.1", AssetID: "kiln-b",
		Created: time.Date(2026, 11, 22, 9, 30, 12, 0, time.UTC), Files: []distribute.SourceFile{{Format: "qcow2", Source: distribute.Source{File: src}}}}
	if _, err := pub.Publish(context.Background(), []distribute.Release{rel}, true); err != nil {
		t.Fatal(err)
	}
	if !h.reload() {
		t.Fatal("the new generation was not loaded")
	}
	if resp, _ := get(t, ts.URL+"/"+q.Path); resp.StatusCode != 404 {
		t.Fatalf("retired file: %s", resp.Status)
	}
	if resp, body := get(t, ts.URL+"/images/sandbox/x86_64/1.1/sandbox-x86_64-1.1.qcow2"); resp.StatusCode != 200 || string(body) != "new disk" {
		t.Fatalf("new file: %s", resp.Status)
	}
	if h.reload() {
		t.Fatal("reloaded an unchanged generation")
	}
}
