package qemuboot_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-images/kiln/internal/cloud/local/debimage"
	"github.com/kiln-images/kiln/internal/cloud/local/debimage/debimagetest"
)

// fixture is the image the boot tests share, the debimage test fixture
// without exports, built once per test binary by the first test that needs
// it.
var fixture = &debimagetest.Shared{
	Name:    "qemuboot",
	Options: []func(*debimage.Spec){func(s *debimage.Spec) { s.Exports = nil }},
	// Read-only, as in the image store: the boot must not need to write it.
	Ready: func(f *debimagetest.Fixture) error { return os.Chmod(f.Result.Disk, 0o444) },
}

func TestMain(m *testing.M) { fixture.Main(m) }

// needImage returns the path of the fixture's raw disk; the test fails when
// it cannot be built.
func needImage(t *testing.T) string {
	t.Helper()
	return fixture.Fixture(t).Result.Disk
}

// testScript returns the absolute path of a script in testdata.
func testScript(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}
