// Package debimagetest builds the small image the local backend's tests
// share, from a fixture recipe with a step of each kind, and holds the
// helpers those tests have in common. Tests share the image through a
// Shared, which TestMain runs, so that a test binary builds it once.
package debimagetest

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local/debimage"
	"github.com/kiln-images/kiln/internal/config"
)

//go:embed recipe
var recipe embed.FS

// Fixture file modes, which embedding does not keep.
var recipeModes = map[string]fs.FileMode{"bash-step.sh": 0o755}

// RecipeHash is a digest of the fixture recipe, for naming directories.
func RecipeHash() string {
	h := sha256.New()
	fs.WalkDir(recipe, "recipe", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := recipe.ReadFile(p)
			fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

// WriteRecipe writes the fixture recipe into dir.
func WriteRecipe(dir string) error {
	return fs.WalkDir(recipe, "recipe", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strings.TrimPrefix(strings.TrimPrefix(p, "recipe"), "/"))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := recipe.ReadFile(p)
		if err != nil {
			return err
		}
		mode, ok := recipeModes[filepath.Base(p)]
		if !ok {
			mode = 0o644
		}
		return os.WriteFile(dst, b, mode)
	})
}

// Greeting is the extra var the fixture's ansible step writes to
// /etc/kiln-fixture/ansible.txt.
const Greeting = "hello from ansible"

// Recipe variables of the fixture: one plain, one secret, which the shell
// and ansible steps use without writing it into the image.
const (
	Flavour = "crisp"
	Token   = "fixture-s3cret-token-9f2c"
)

// Vars are the fixture's recipe variables.
func Vars() []cloud.Var {
	return []cloud.Var{{Name: "fixture_flavour", Value: Flavour}, {Name: "fixture_token", Value: Token, Secret: true}}
}

// Steps are the fixture recipe's provisioning steps.
func Steps() []config.Step {
	return []config.Step{
		{Shell: "setup.sh"},
		{Name: "bash step", Shell: "bash-step.sh"},
		{File: &config.FileStep{Source: "files/motd", Destination: "/etc/motd", Mode: "0644"}},
		{Name: "conf dir", File: &config.FileStep{Source: "files/conf.d", Destination: "/etc/kiln-fixture/conf.d", Mode: "0750", Owner: "nobody:nogroup"}},
		{Ansible: &config.AnsibleStep{Playbook: "play.yml", ExtraVars: map[string]string{"greeting": Greeting}}},
	}
}

// Spec is the fixture build of the recipe in recipeDir into workDir. The
// mirror is $KILN_TEST_MIRROR when set.
func Spec(recipeDir, workDir string) debimage.Spec {
	return debimage.Spec{
		Arch:     "x86_64",
		Suite:    "bookworm",
		Mirror:   os.Getenv("KILN_TEST_MIRROR"),
		Packages: []string{"python3"}, // for ansible's copy module
		Steps:    Steps(),
		Vars:     Vars(),
		Dir:      recipeDir,
		DiskSize: 2 << 30,
		Exports:  []string{"qcow2", "vmdk", "vhd", "raw"},
		WorkDir:  workDir,
		CacheDir: CacheDir(),
	}
}

// CacheDir is the base tarball cache the tests share across runs, so that
// only the first run bootstraps: $KILN_TEST_CACHE, or kiln-debimage-cache
// in the system's temporary directory.
func CacheDir() string {
	if d := os.Getenv("KILN_TEST_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "kiln-debimage-cache")
}

// Tools the builder and the boot tests need, with their Debian packages.
var Tools = map[string]string{
	"mmdebstrap":         "mmdebstrap",
	"sfdisk":             "fdisk",
	"mkfs.ext4":          "e2fsprogs",
	"debugfs":            "e2fsprogs",
	"mkfs.vfat":          "dosfstools",
	"mdir":               "mtools",
	"qemu-img":           "qemu-utils",
	"qemu-system-x86_64": "qemu-system-x86",
	"ansible-playbook":   "ansible",
}

// MissingTools names the tools not installed, with their packages; ""
// when all are there. Tests fail with it (never skip): CI installs them.
func MissingTools() string {
	var missing []string
	for tool, pkg := range Tools {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				missing = append(missing, tool+" (apt-get install "+pkg+")")
			}
		}
	}
	for _, f := range []string{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi"} {
		if _, err := os.Stat(f); err != nil {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "missing tools for the local image tests: " + strings.Join(missing, ", ")
}

// Fixture is the built fixture image.
type Fixture struct {
	Dir      string // holds recipe/ and work/
	Spec     debimage.Spec
	Result   debimage.Result
	Progress *Progress
}

// Build writes the recipe into dir/recipe and builds it into dir/work,
// with the Spec changed by the options given.
func Build(ctx context.Context, dir string, opts ...func(*debimage.Spec)) (*Fixture, error) {
	if m := MissingTools(); m != "" {
		return nil, fmt.Errorf("%s", m)
	}
	recipeDir := filepath.Join(dir, "recipe")
	if err := WriteRecipe(recipeDir); err != nil {
		return nil, err
	}
	f := &Fixture{Dir: dir, Spec: Spec(recipeDir, filepath.Join(dir, "work")), Progress: &Progress{}}
	f.Spec.Progress = f.Progress
	for _, o := range opts {
		o(&f.Spec)
	}
	res, err := debimage.Build(ctx, f.Spec)
	if err != nil {
		return nil, fmt.Errorf("build fixture image: %w", err)
	}
	f.Result = res
	return f, nil
}

// Progress records the steps a build reports, in order.
type Progress struct {
	mu    sync.Mutex
	steps []ProgressStep
}

// ProgressStep is one reported step and how it ended.
type ProgressStep struct {
	Name  string
	Ended bool
	Err   error
}

// Step implements cloud.Progress.
func (p *Progress) Step(name string) func(error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := len(p.steps)
	p.steps = append(p.steps, ProgressStep{Name: name})
	return func(err error) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.steps[i].Ended, p.steps[i].Err = true, err
	}
}

// Steps returns the steps reported so far.
func (p *Progress) Steps() []ProgressStep {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]ProgressStep(nil), p.steps...)
}

// Names returns the names of the steps reported so far.
func (p *Progress) Names() []string {
	var names []string
	for _, s := range p.Steps() {
		names = append(names, s.Name)
	}
	return names
}

// Shared is the fixture image of one test binary: the first test that needs
// it builds it, in a temporary directory that Main removes when the tests
// are done, so that a binary builds the image at most once.
type Shared struct {
	// Name names the temporary directory, e.g. the package under test.
	Name string
	// Options change the fixture's Spec.
	Options []func(*debimage.Spec)
	// Ready, when set, runs once on the built fixture; an error counts as
	// the build's.
	Ready func(*Fixture) error

	dir string
	mu  sync.Mutex
	f   *Fixture
	err error
}

// Main runs the tests of m and exits; call it from TestMain.
func (s *Shared) Main(m *testing.M) {
	var err error
	s.dir, err = os.MkdirTemp("", "kiln-"+s.Name+"-test-"+RecipeHash()[:12]+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(s.dir)
	os.Exit(code)
}

// Fixture returns the fixture, building it on first use, and fails t when
// it cannot be built (then and in every later test).
func (s *Shared) Fixture(t testing.TB) *Fixture {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil && s.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		start := time.Now()
		s.f, s.err = Build(ctx, filepath.Join(s.dir, "fixture"), s.Options...)
		t.Logf("fixture image built in %s", time.Since(start).Round(time.Second))
		if s.err == nil {
			t.Logf("cache key %s, hit %v", s.f.Result.CacheKey, s.f.Result.CacheHit)
			if s.Ready != nil {
				s.err = s.Ready(s.f)
			}
		}
	}
	if s.err != nil {
		t.Fatalf("no fixture image: %v", s.err)
	}
	return s.f
}
