package debimage_test

import (
	"testing"

	"github.com/kiln-images/kiln/internal/cloud/local/debimage/debimagetest"
)

// fixture is the image the integration tests inspect, built once per test
// binary by the first test that needs it.
var fixture = &debimagetest.Shared{Name: "debimage"}

func TestMain(m *testing.M) { fixture.Main(m) }
