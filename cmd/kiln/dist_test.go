package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/config"
	"github.com/kiln-images/kiln/internal/journal"
	"github.com/kiln-images/kiln/internal/minisign"
	"github.com/kiln-images/kiln/internal/pipeline"
	"github.com/kiln-images/kiln/internal/report"
)

// distYAML is a local project that publishes downloads, served over TLS.
const distYAML = `project: demo
regions: [local-a, local-b]
build_region: local-a
cost_tag: {key: deployment_name, value: demo}
channels: {latest: {}, stable: {}}
use_cases:
  sandbox:
    description: A sandbox VM
    architectures: [x86_64]
    tests: [tests/boot.sh]
    publish: {public: true}
    exports: [qcow2, raw]
serve:
  tls_cert: tls/cert.pem
  tls_key: tls/key.pem
distribution:
  signing_key: keys/kiln.key
  public_key: %s
  keep: 3
  rate_limit: {requests: 100, window: 5m, allow: [127.0.0.99/32]}
`

// distWorld is a local project with a download tree, released into by the
// real pipeline around the real local store (builder and boot test
// replaced, as in localWorld).
type distWorld struct {
	dir, cfg string
	key      minisign.PrivateKey
	certPEM  []byte
}

func newDistWorld(t *testing.T) *distWorld {
	t.Helper()
	key, err := minisign.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	w := &distWorld{dir: filepath.Join(t.TempDir(), "proj"), key: key}
	sec, _ := key.MarshalText()
	certPEM, keyPEM := selfSigned(t)
	w.certPEM = certPEM
	for p, data := range map[string][]byte{
		"kiln.yaml":     []byte(fmt.Sprintf(distYAML, key.Public())),
		"tests/boot.sh": []byte("#!/bin/sh\ntrue\n"),
		"keys/kiln.key": sec,
		"tls/cert.pem":  certPEM,
		"tls/key.pem":   keyPEM,
	} {
		full := filepath.Join(w.dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w.cfg = filepath.Join(w.dir, "kiln.yaml")
	return w
}

// selfSigned makes a TLS certificate for 127.0.0.1 and localhost.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func (w *distWorld) config(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Load(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// release runs every phase of a new run of sandbox with version, with the
// pipeline's indexer as `kiln release` wires it.
func (w *distWorld) release(t *testing.T, version string, at time.Time) pipeline.Run {
	t.Helper()
	ctx := t.Context()
	cfg := w.config(t)
	j, err := journal.Open(journalPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	b, err := local.New(cfg.Backend.Local, cfg.Backend.Local.Root, cfg.Regions, local.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	backend := &exportingBuilder{Backend: b}
	p := &pipeline.Pipeline{Config: cfg, Backend: backend, Journal: j, Concurrency: 2, Now: func() time.Time { return at }}
	p.Indexer = newDownloads(cfg, backend, nil, nil)
	r, err := p.NewRun(ctx, "sandbox", "", version)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Release(ctx, r, "latest"); err != nil {
		t.Fatalf("release: %v", err)
	}
	return r
}

// exportingBuilder is the local store with a builder that imports a small
// random raw disk and its qcow2 (made by qemu-img), and a test that passes.
type exportingBuilder struct{ *local.Backend }

func (b *exportingBuilder) Build(ctx context.Context, in cloud.BuildInput) (cloud.Image, error) {
	dir := filepath.Join(in.StateDir, "build-"+in.Token)
	os.MkdirAll(dir, 0o755)
	raw, qcow2 := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "disk.qcow2")
	data := make([]byte, 1<<20)
	rand.Read(data[:512<<10]) // half data, half a hole
	if err := os.WriteFile(raw, data, 0o644); err != nil {
		return cloud.Image{}, err
	}
	if out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2).CombinedOutput(); err != nil {
		return cloud.Image{}, fmt.Errorf("qemu-img: %v: %s", err, out)
	}
	return b.ImportImage(ctx, local.ImportInput{Region: in.Region, Name: in.Name, Arch: in.Arch, Token: in.Token, Tags: in.Tags, Disk: raw, Exports: map[string]string{"qcow2": qcow2}})
}

func (b *exportingBuilder) TestImage(ctx context.Context, in cloud.TestInput) (cloud.TestResult, error) {
	return cloud.TestResult{Passed: true}, nil
}

// serve starts `kiln serve` as a process and returns its base URL.
func (w *distWorld) serve(t *testing.T, extra ...string) (*proc, string) {
	t.Helper()
	p := startKiln(t, nil, append([]string{"serve", "-c", w.cfg, "--listen", "127.0.0.1:0"}, extra...)...)
	re := regexp.MustCompile(`kiln serve: (https?://127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.stderr.String()); m != nil {
			return p, m[1]
		}
		if p.exited() {
			t.Fatalf("kiln serve exited %d:\n%s", p.code, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("kiln serve printed no URL:\n%s", p.stderr.String())
	return nil, ""
}

// tool runs a program and returns its combined output and exit code.
func tool(t *testing.T, env []string, name string, args ...string) (string, int) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s is not installed (make deps installs it): %v", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return string(out), code
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}

// The flow of the README: a release with exports, kiln serve, lxc adds it
// as a simplestreams remote, lists and exports the image, curl resumes a
// download with -C -, and kiln verify checks what they downloaded; a file
// corrupted in the tree fails lxc and is never served.
func TestDownloadsWithLXCAndCurl(t *testing.T) {
	w := newDistWorld(t)
	at := time.Date(2026, 11, 21, 9, 30, 12, 0, time.UTC)
	r := w.release(t, "1.0", at)
	tree := filepath.Join(w.dir, ".kiln", "dist")
	vdir := filepath.Join(tree, "images", "sandbox", "x86_64", "1.0")
	qcow2 := filepath.Join(vdir, "sandbox-x86_64-1.0.qcow2")
	if _, err := os.Stat(qcow2); err != nil {
		t.Fatalf("release left no qcow2 in the tree: %v", err)
	}

	// kiln index on the existing release: nothing to do.
	out, stderr, code := kiln(t, "index", "-c", w.cfg, "-o", "json")
	var ir report.Index
	if code != 0 || json.Unmarshal([]byte(out), &ir) != nil || ir.Applied || ir.Changed || len(ir.Kept) != 1 || !strings.Contains(stderr, "nothing was changed; rerun with --apply") {
		t.Fatalf("kiln index: exit %d\n%s\n%s", code, out, stderr)
	}
	checkSchema(t, report.SchemaIndex, out)

	srv, url := w.serve(t)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("serve URL %s: want https with serve.tls_cert", url)
	}

	// lxc: add kiln as a remote, trusting its certificate as a user does
	// for a self-signed one.
	conf := t.TempDir()
	env := []string{"LXD_CONF=" + conf, "HOME=" + conf}
	if out, code := tool(t, env, "lxc", "remote", "add", "kiln", url, "--protocol", "simplestreams"); code != 0 {
		t.Fatalf("lxc remote add: %s", out)
	}
	os.MkdirAll(filepath.Join(conf, "servercerts"), 0o700)
	os.WriteFile(filepath.Join(conf, "servercerts", "kiln.crt"), w.certPEM, 0o600)
	out, code = tool(t, env, "lxc", "image", "list", "kiln:", "--format", "csv", "-c", "lfpdat")
	if code != 0 || !strings.Contains(out, "sandbox/latest") || !strings.Contains(out, "VIRTUAL-MACHINE") || !strings.Contains(out, "A sandbox VM x86_64 (1.0)") {
		t.Fatalf("lxc image list: exit %d\n%s", code, out)
	}
	export := t.TempDir()
	out, code = tool(t, env, "lxc", "image", "export", "kiln:sandbox/latest", export+"/")
	if code != 0 {
		t.Fatalf("lxc image export: exit %d\n%s", code, out)
	}
	got, _ := filepath.Glob(filepath.Join(export, "*"))
	var disk string
	for _, f := range got {
		if strings.HasSuffix(f, ".qcow2") {
			disk = f
		}
	}
	if len(got) != 2 || disk == "" || fileSHA(t, disk) != fileSHA(t, qcow2) {
		t.Fatalf("lxc exported %v", got)
	}
	// kiln verify checks lxc's download against the signed index, over
	// HTTPS, with the public key alone (no project).
	pub := w.key.Public().String()
	caEnv := "SSL_CERT_FILE=" + filepath.Join(w.dir, "tls", "cert.pem")
	vp, vcode := runKiln(t, []string{caEnv}, "verify", "--image", disk, "--index", url, "--public-key", pub, "-c", filepath.Join(t.TempDir(), "none.yaml"))
	if vcode != 0 || !strings.Contains(vp.stdout.String(), "result  verified") {
		t.Fatalf("kiln verify of lxc's download: exit %d\n%s%s", vcode, vp.stdout.String(), vp.stderr.String())
	}

	// curl: half a download, then -C - resumes it.
	part := filepath.Join(t.TempDir(), "sandbox-x86_64-1.0.raw.gz")
	rawURL := url + "/images/sandbox/x86_64/1.0/sandbox-x86_64-1.0.raw.gz"
	curl := []string{"-sS", "--fail", "--cacert", filepath.Join(w.dir, "tls", "cert.pem")}
	if out, code := tool(t, nil, "curl", append(curl, "-r", "0-999", "-o", part, rawURL)...); code != 0 {
		t.Fatalf("curl first part: %s", out)
	}
	if fi, _ := os.Stat(part); fi.Size() != 1000 {
		t.Fatalf("first part is %d bytes", fi.Size())
	}
	if out, code := tool(t, nil, "curl", append(curl, "-C", "-", "-o", part, rawURL)...); code != 0 {
		t.Fatalf("curl -C -: %s", out)
	}
	if fileSHA(t, part) != fileSHA(t, filepath.Join(vdir, "sandbox-x86_64-1.0.raw.gz")) {
		t.Fatal("the resumed download differs from the file")
	}
	if out, _, code := kiln(t, "verify", "--image", part, "-c", w.cfg, "-o", "json"); code != 0 {
		t.Fatalf("kiln verify of curl's download: exit %d", code)
	} else {
		checkSchema(t, report.SchemaVerifyImage, out)
	}
	// A decompressed download verifies by its uncompressed sha256; a
	// corrupted one does not (exit 1).
	if out, code := tool(t, nil, "gzip", "-dk", part); code != 0 {
		t.Fatal(out)
	}
	if out, _, code := kiln(t, "verify", "--image", strings.TrimSuffix(part, ".gz"), "-c", w.cfg); code != 0 {
		t.Fatalf("kiln verify of the decompressed disk: exit %d\n%s", code, out)
	}
	data, _ := os.ReadFile(part)
	data[500] ^= 1
	os.WriteFile(part, data, 0o644)
	out, stderr, code = kiln(t, "verify", "--image", part, "-c", w.cfg)
	if code != 1 || !strings.Contains(out, "NOT verified") || !strings.Contains(stderr, "corrupt or incomplete") {
		t.Fatalf("kiln verify of a corrupted download: exit %d\n%s%s", code, out, stderr)
	}

	// Bad requests: ../ and unindexed paths are 404, a malformed range 416.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--path-as-is", url + "/images/sandbox/x86_64/1.0/../../../../kiln.yaml"}, "404"},
		{[]string{url + "/images/sandbox/x86_64/1.0/"}, "404"},
		{[]string{url + "/.kiln-dist"}, "404"},
		{[]string{"-H", "Range: bytes=abc", url + "/images/sandbox/x86_64/1.0/SHA256SUMS"}, "416"},
	} {
		out, _ := tool(t, nil, "curl", append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", filepath.Join(w.dir, "tls", "cert.pem")}, c.args...)...)
		if out != c.want {
			t.Errorf("curl %v: %s, want %s", c.args, out, c.want)
		}
	}

	// A file corrupted in the tree after indexing: the server refuses it
	// and lxc fails; it never gets the old checksum with new bytes.
	q, _ := os.ReadFile(qcow2)
	q[len(q)/2] ^= 0xff
	os.Remove(qcow2) // a hard link of the store's blob: replace, not write through
	os.WriteFile(qcow2, q, 0o644)
	os.RemoveAll(filepath.Join(conf, "cache"))
	out, code = tool(t, env, "lxc", "image", "export", "kiln:sandbox/latest", t.TempDir()+"/")
	if code == 0 {
		t.Fatalf("lxc exported a corrupted image:\n%s", out)
	}
	t.Logf("lxc on the corrupted file: %s", strings.TrimSpace(out))
	if out, _ := tool(t, nil, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", filepath.Join(w.dir, "tls", "cert.pem"), url+"/images/sandbox/x86_64/1.0/sandbox-x86_64-1.0.qcow2"); out != "500" {
		t.Errorf("corrupted file: HTTP %s, want 500", out)
	}

	// SIGTERM: a graceful stop, exit 0.
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if code := srv.wait(); code != 0 || !strings.Contains(srv.stderr.String(), "kiln serve: stopped") {
		t.Fatalf("kiln serve after SIGTERM: exit %d\n%s", code, srv.stderr.String())
	}
	_ = r
}

// The real thing once: the example project released for real (mmdebstrap,
// a qemu boot), its qcow2 listed and exported by lxc from kiln serve,
// resumed by curl -C -, and both downloads verified by kiln verify.
func TestLocalReleaseDownloadsEndToEnd(t *testing.T) {
	dir, cfgPath := localProject(t, "5m")
	key, _ := minisign.GenerateKey(nil)
	sec, _ := key.MarshalText()
	certPEM, keyPEM := selfSigned(t)
	for p, data := range map[string][]byte{"keys/minisign.key": sec, "tls/cert.pem": certPEM, "tls/key.pem": keyPEM} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o700)
		os.WriteFile(filepath.Join(dir, p), data, 0o600)
	}
	yaml, _ := os.ReadFile(cfgPath)
	yaml = append(yaml, fmt.Sprintf("serve: {tls_cert: tls/cert.pem, tls_key: tls/key.pem}\ndistribution: {signing_key: keys/minisign.key, public_key: %s}\n", key.Public())...)
	os.WriteFile(cfgPath, yaml, 0o644)

	out, stderr, code := kiln(t, "release", "debian-sandbox", "-c", cfgPath, "-o", "json")
	if code != 0 {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, stderr)
	}
	var rep report.Release
	json.Unmarshal([]byte(out), &rep)
	v := rep.Run.Version
	w := &distWorld{dir: dir, cfg: cfgPath, key: key, certPEM: certPEM}
	if got := w.checkTree(t, true); len(got) != 1 || got[0] != v {
		t.Fatalf("the tree has versions %v, want %s", got, v)
	}
	srv, url := w.serve(t)
	defer srv.cmd.Process.Signal(os.Interrupt)

	conf := t.TempDir()
	env := []string{"LXD_CONF=" + conf, "HOME=" + conf}
	if out, code := tool(t, env, "lxc", "remote", "add", "kiln", url, "--protocol", "simplestreams"); code != 0 {
		t.Fatalf("lxc remote add: %s", out)
	}
	os.MkdirAll(filepath.Join(conf, "servercerts"), 0o700)
	os.WriteFile(filepath.Join(conf, "servercerts", "kiln.crt"), certPEM, 0o600)
	if out, code := tool(t, env, "lxc", "image", "list", "kiln:", "--format", "csv"); code != 0 || !strings.Contains(out, "debian-sandbox/latest") {
		t.Fatalf("lxc image list: exit %d\n%s", code, out)
	}
	export := t.TempDir()
	if out, code := tool(t, env, "lxc", "image", "export", "kiln:debian-sandbox/latest", export+"/"); code != 0 {
		t.Fatalf("lxc image export: exit %d\n%s", code, out)
	}
	disks, _ := filepath.Glob(filepath.Join(export, "*.qcow2"))
	if len(disks) != 1 {
		t.Fatalf("lxc exported %v", disks)
	}
	if out, code := tool(t, nil, "qemu-img", "info", disks[0]); code != 0 || !strings.Contains(out, "file format: qcow2") {
		t.Fatalf("the exported disk: %s", out)
	}
	if _, stderr, code := kiln(t, "verify", "--image", disks[0], "-c", cfgPath); code != 0 {
		t.Fatalf("kiln verify of lxc's download: exit %d\n%s", code, stderr)
	}
	name := "debian-sandbox-x86_64-" + v + ".qcow2"
	part := filepath.Join(t.TempDir(), name)
	fileURL := url + "/images/debian-sandbox/x86_64/" + v + "/" + name
	curl := []string{"-sS", "--fail", "--cacert", filepath.Join(dir, "tls", "cert.pem"), "-o", part}
	if out, code := tool(t, nil, "curl", append(curl, "-r", "0-1048575", fileURL)...); code != 0 {
		t.Fatalf("curl first MiB: %s", out)
	}
	if out, code := tool(t, nil, "curl", append(curl, "-C", "-", fileURL)...); code != 0 {
		t.Fatalf("curl -C -: %s", out)
	}
	if fileSHA(t, part) != fileSHA(t, disks[0]) {
		t.Fatal("curl's resumed download differs from lxc's")
	}
	vp, vcode := runKiln(t, []string{"SSL_CERT_FILE=" + filepath.Join(dir, "tls", "cert.pem")}, "verify", "--image", part, "--index", url, "--public-key", key.Public().String())
	if vcode != 0 {
		t.Fatalf("kiln verify of curl's download over HTTPS: exit %d\n%s", vcode, vp.stderr.String())
	}
}

// The release checklist and the signing key are checked before anything
// is built: a refused release leaves no run, no image and no journal entry.
func TestReleaseRefusedUpFront(t *testing.T) {
	w := newDistWorld(t)
	data, _ := os.ReadFile(w.cfg)
	s := strings.Replace(string(data), "    exports: [qcow2, raw]\n", "    exports: [qcow2, raw]\n    version: \"1.4.0\"\n", 1)
	s = strings.Replace(s, "  keep: 3\n", "  keep: 3\n  changelog: doc/changes/changes_{version}.md\n", 1)
	os.WriteFile(w.cfg, []byte(s), 0o644)
	nothingBuilt := func(t *testing.T) {
		t.Helper()
		if imgs, _ := filepath.Glob(filepath.Join(w.dir, ".kiln", "store", "*", "images", "*.json")); len(imgs) != 0 {
			t.Fatalf("images were made: %v", imgs)
		}
		if out, _, _ := kiln(t, "runs", "-c", w.cfg); strings.Contains(out, "kiln-") {
			t.Fatalf("a run was started:\n%s", out)
		}
	}
	for _, cmd := range [][]string{{"release", "sandbox"}, {"build", "sandbox"}} {
		_, stderr, code := kiln(t, append(cmd, "-c", w.cfg)...)
		if code != 2 || !strings.Contains(stderr, "release checklist: "+filepath.Join(w.dir, "doc/changes/changes_1.4.0.md")+": missing") {
			t.Fatalf("%v without a changelog: exit %d\n%s", cmd, code, stderr)
		}
		nothingBuilt(t)
	}
	_, stderr, code := kiln(t, "release", "sandbox", "--version", "1.5.0", "-c", w.cfg)
	if code != 2 || !strings.Contains(stderr, `use_cases.sandbox.version is "1.4.0", the release's version is "1.5.0"`) {
		t.Fatalf("a version other than kiln.yaml's: exit %d\n%s", code, stderr)
	}
	// With the changelog in place, a missing signing key still stops it.
	os.MkdirAll(filepath.Join(w.dir, "doc/changes"), 0o755)
	os.WriteFile(filepath.Join(w.dir, "doc/changes/changes_1.4.0.md"), []byte("Version: 1.4.0\nDate: 2026-11-21\nCode name: Bluebird\n"), 0o644)
	os.Remove(filepath.Join(w.dir, "keys/kiln.key"))
	_, stderr, code = kiln(t, "release", "sandbox", "-c", w.cfg)
	if code != 2 || !strings.Contains(stderr, "distribution.signing_key: read the signing key") || !strings.Contains(stderr, "nothing was published") {
		t.Fatalf("no signing key: exit %d\n%s", code, stderr)
	}
	nothingBuilt(t)
}
