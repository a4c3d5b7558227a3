// Package cloudtest is the conformance suite every kiln backend passes: the
// behaviour of cloud.Images and cloud.Inventory that the core relies on,
// checked against a real backend (the local store, the aws backend against
// moto) through a Harness. Its assertions are backend-neutral: they never
// depend on the form of ids, on digests or on how a backend stores images.
//
// A backend's test calls the suites with its harness:
//
//	func TestConformance(t *testing.T) {
//		h := cloudtest.Harness{New: ..., Seed: ...}
//		t.Run("Images", func(t *testing.T) { cloudtest.TestImages(t, h) })
//		t.Run("Inventory", func(t *testing.T) { cloudtest.TestInventory(t, h) })
//	}
package cloudtest
