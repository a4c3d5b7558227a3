package debimage_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/local/debimage/debimagetest"
)

// The image the integration tests inspect is built once per test binary, by
// the first test that needs it, into testDir; TestMain removes it.
var (
	testDir    string
	fixtureMu  sync.Mutex
	fixture    *debimagetest.Fixture
	fixtureErr error
)

func TestMain(m *testing.M) {
	var err error
	testDir, err = os.MkdirTemp("", "kiln-debimage-test-"+debimagetest.RecipeHash()[:12]+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(testDir)
	os.Exit(code)
}

// needFixture returns the fixture image, building it on first use, and
// fails the test when it cannot be built.
func needFixture(t *testing.T) *debimagetest.Fixture {
	t.Helper()
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if fixture == nil && fixtureErr == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		start := time.Now()
		fixture, fixtureErr = debimagetest.Build(ctx, filepath.Join(testDir, "fixture"))
		t.Logf("fixture image built in %s", time.Since(start).Round(time.Second))
		if fixtureErr == nil {
			t.Logf("cache key %s, hit %v", fixture.Result.CacheKey, fixture.Result.CacheHit)
		}
	}
	if fixtureErr != nil {
		t.Fatalf("no fixture image: %v", fixtureErr)
	}
	return fixture
}
