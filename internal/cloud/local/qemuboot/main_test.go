package qemuboot_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/local/debimage"
	"github.com/kiln-images/kiln/internal/cloud/local/debimage/debimagetest"
)

// The boot tests share one image, the debimage test fixture, built by the
// first test that needs it into testDir; TestMain removes it.
var (
	testDir    string
	fixtureMu  sync.Mutex
	fixture    *debimagetest.Fixture
	fixtureErr error
)

func TestMain(m *testing.M) {
	var err error
	testDir, err = os.MkdirTemp("", "kiln-qemuboot-test-"+debimagetest.RecipeHash()[:12]+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(testDir)
	os.Exit(code)
}

// needImage returns the path of the fixture's raw disk, building it on
// first use; the test fails when it cannot be built.
func needImage(t *testing.T) string {
	t.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if fixture == nil && fixtureErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		start := time.Now()
		fixture, fixtureErr = debimagetest.Build(ctx, filepath.Join(testDir, "fixture"),
			func(s *debimage.Spec) { s.Exports = nil })
		t.Logf("fixture image built in %s", time.Since(start).Round(time.Second))
		if fixtureErr == nil {
			// Read-only, as in the image store: the boot must not need
			// to write it.
			fixtureErr = os.Chmod(fixture.Result.Disk, 0o444)
		}
	}
	if fixtureErr != nil {
		t.Fatalf("no fixture image: %v", fixtureErr)
	}
	return fixture.Result.Disk
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
