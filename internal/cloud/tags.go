package cloud

// Tag keys kiln puts on every asset at creation.
const (
	TagManaged = "kiln:managed"  // "true" on everything kiln creates
	TagAssetID = "kiln:asset-id" // the run's asset id
	TagUseCase = "kiln:use-case"
	TagPhase   = "kiln:phase" // build, test, replicate, publish
	TagArch    = "kiln:arch"
	// TagToken records the idempotency token of the call that made the asset.
	TagToken = "kiln:token"
	// TagSource is the id of the image a copy was made from.
	TagSource = "kiln:source"
	// TagVersion is the run's version, as used in release names.
	TagVersion = "kiln:version"
	// TagProject is kiln.yaml's project name: selection for deletion is
	// scoped to it, so one project never deletes another's resources in a
	// shared account.
	TagProject = "kiln:project"
	// TagDeployment is the name of the deployment a resource belongs to.
	TagDeployment = "kiln:deployment"
)

// Status tags, added after creation to record what happened to an asset.
const (
	TagTest   = "kiln:test"   // "passed" or "failed"
	TagRetain = "kiln:retain" // "true": cleanup keeps it
)

// Phases, the values of TagPhase.
const (
	PhaseBuild     = "build"
	PhaseTest      = "test"
	PhaseReplicate = "replicate"
	PhasePublish   = "publish"
	// PhaseClaim marks what holds a run's claim on its channel while it
	// releases (see Claimer).
	PhaseClaim = "claim"
)

// TestPassed is the value of TagTest for an image that passed its tests.
const TestPassed = "passed"

// TestFailed is the value of TagTest for an image that failed them.
const TestFailed = "failed"

// Managed reports whether tags mark a kiln-managed asset.
func Managed(tags map[string]string) bool { return tags[TagManaged] == "true" }

// Match reports whether tags satisfy every pair in want; an empty wanted
// value matches any value of that key.
func Match(tags, want map[string]string) bool {
	for k, v := range want {
		got, ok := tags[k]
		if !ok || (v != "" && got != v) {
			return false
		}
	}
	return true
}
