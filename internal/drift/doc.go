// Package drift compares the channel manifests with the cloud: every entry's
// image must exist in its region, be available, and have the name,
// architecture, launch permissions and deprecation time the manifest and
// the publish policy say; and every kiln-managed image that no manifest
// references is reported as an orphan.
//
// It makes one paged image scan per region, plus one launch-permission read
// per entry whose policy shares with accounts or organizations (the scan
// only tells public from private).
package drift
