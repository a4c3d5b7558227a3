package awsdestroy

import (
	"strings"
	"testing"
	"time"

	"github.com/kiln-images/kiln/internal/cloud/aws/awstest"
	"github.com/kiln-images/kiln/internal/teardown/teardowntest"
)

// The peer of the benchmark does the whole teardown, or its figures mean
// nothing: on a small scenario, Check finds everything of hub before
// Minimal and nothing after, the retained set and the neighbour whole.
func TestMinimalTearsDownTheScenario(t *testing.T) {
	moto, err := awstest.Launch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { moto.Close() })
	stub := awstest.NewStub(t, moto.URL)
	stub.EmulateStackFailures() // a stack whose bucket is not empty fails to delete, as on AWS
	s := Scenario()
	s.Units, s.Versions, s.Markers = s.Units[:2], 30, 10
	s.Buckets, s.Repositories, s.Snapshots, s.Volumes = 2, 2, 3, 2
	seeded, err := teardowntest.NewAWS(moto.URL, Region).Seed(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(t.Context(), moto.URL, seeded); err == nil || strings.Count(err.Error(), "left: ") != len(seeded.Gone) {
		t.Fatalf("before the teardown: %v", err)
	}
	if err := Minimal(t.Context(), stub.URL, s, seeded, 10*time.Millisecond, 4); err != nil {
		t.Fatal(err)
	}
	if err := Check(t.Context(), moto.URL, seeded); err != nil {
		t.Fatal(err)
	}
}
