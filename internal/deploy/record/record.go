// Package record is a deployment's record, deployments/<name>.json in the
// project's git repository: what runs in the deployment (its release:
// the image in every region, the manifest commit it came from, template
// digests, the parameters that are not secret), its outputs and URLs, the
// history of its verifications, the approvals given with who gave them,
// its hold and lock, and its state. Like a channel manifest it is
// canonical JSON (keys sorted, two-space indent, a trailing newline),
// written atomically, so that every change is a small git diff and a
// record at a git ref is a release to roll back to.
//
// Records never hold a secret's value: a secret input appears by
// reference ("env:DEMO_TOKEN").
package record

import (
	"time"
)

// Schema names the record format.
const Schema = "kiln.deployment-record/v1"

// How much history a record keeps.
const (
	MaxVerifications = 20
	MaxEvents        = 50
	MaxApprovals     = 20
)

// State is a deployment's state.
type State string

const (
	StateNew       State = "new"       // never deployed (locked or approved ahead)
	StateDeploying State = "deploying" // a deploy is under way, or was interrupted
	StateDeployed  State = "deployed"  // its units run the release
	StateFailed    State = "failed"    // the last deploy failed; Reason says why
	StateDisabled  State = "disabled"  // its compute is stopped (kiln disable)
	StateDestroyed State = "destroyed" // torn down (kiln destroy)
	// StateDestroying: a teardown is under way, or was interrupted; kiln
	// destroy finishes it, and nothing else changes the deployment.
	StateDestroying State = "destroying"
)

var states = []State{StateNew, StateDeploying, StateDeployed, StateFailed, StateDisabled, StateDestroying, StateDestroyed}

// Record is one deployment's record.
type Record struct {
	Schema  string `json:"schema"`
	Name    string `json:"name"`
	Project string `json:"project"`
	Region  string `json:"region"`
	Account string `json:"account"`
	State   State  `json:"state"`
	// Reason says why the state is what it is (a failed unit, a hook).
	Reason string `json:"reason,omitempty"`
	// Template, Owner and Expires describe a personal deployment made
	// from a template.
	Template string    `json:"template,omitempty"`
	Owner    string    `json:"owner,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`

	// Release is what runs (or, while deploying, what is being deployed).
	Release *Release `json:"release,omitempty"`
	// Previous is the release that ran before the current one.
	Previous   *Release  `json:"previous,omitempty"`
	DeployedAt time.Time `json:"deployed_at,omitzero"`
	DeployedBy string    `json:"deployed_by,omitempty"`
	// Run is the journal's id of the last deploy, promotion or rollback
	// (an interrupted one resumes it).
	Run string `json:"run,omitempty"`

	Units   map[string]Unit   `json:"units"`
	Outputs map[string]string `json:"outputs"`
	// URLs are the outputs that are URLs, for people.
	URLs          []string       `json:"urls"`
	Verifications []Verification `json:"verifications"`
	Approvals     []Approval     `json:"approvals"`
	Hold          *Mark          `json:"hold,omitempty"`
	Lock          *Mark          `json:"lock,omitempty"`
	// Retained lists what a teardown keeps: written before it deletes
	// anything (so that a rerun after a crash keeps it too), and where
	// each resource is now.
	Retained []Retained `json:"retained"`
	History  []Event    `json:"history"`
}

// Release is an image released to a deployment, with what it was
// deployed with.
type Release struct {
	// ID names the release: the image's version and a digest of its
	// images, e.g. "20261121.093012-3f9a1c2b". The same release in every
	// deployment it is promoted to has the same ID.
	ID      string `json:"id"`
	UseCase string `json:"use_case"`
	Arch    string `json:"arch"`
	Version string `json:"version"`
	// ImageName is the images' name (the same in every region).
	ImageName string `json:"image_name"`
	// Images maps every region the release has an image in to its id.
	Images map[string]string `json:"images"`
	// Channel and Manifest say where the image was read from; empty for a
	// pinned image. ManifestCommit is the last git commit of the manifest
	// file when it was read ("" when it was not committed).
	Channel        string `json:"channel,omitempty"`
	Manifest       string `json:"manifest,omitempty"`
	ManifestCommit string `json:"manifest_commit,omitempty"`
	Pinned         bool   `json:"pinned,omitempty"`
	// PromotedFrom names the deployment the release was promoted from.
	PromotedFrom string `json:"promoted_from,omitempty"`
	// Templates maps units to the sha256 of the template they were
	// deployed with (stack units).
	Templates map[string]string `json:"templates"`
	// Parameters are the inputs that are not secret, by name; Secrets the
	// references of those that are ("env:DEMO_TOKEN", "ssm:/demo/token").
	Parameters map[string]string `json:"parameters"`
	Secrets    map[string]string `json:"secrets"`
}

// Unit is what the record knows of one unit.
type Unit struct {
	Kind  string `json:"kind"`
	Token string `json:"token"`
}

// Verification is one run of a deployment's checks.
type Verification struct {
	At      time.Time     `json:"at"`
	Release string        `json:"release"`
	Passed  bool          `json:"passed"`
	Checks  []CheckResult `json:"checks"`
}

// CheckResult is one check of a verification.
type CheckResult struct {
	Name         string `json:"name"`
	Passed       bool   `json:"passed"`
	Measurements int    `json:"measurements"`
	Failures     int    `json:"failures"`
	Errors       int    `json:"errors"`
	// Detail says what the last failed or errored measurement saw.
	Detail string `json:"detail,omitempty"`
}

// Approval is a person's approval of a release for this deployment.
type Approval struct {
	Release string    `json:"release"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// Mark is a hold or a lock: who set it, when and why.
type Mark struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// Retained is a resource a teardown kept: its type (kiln's name, e.g.
// log-group, overlay), its id where it is now (a name, an ARN, a path),
// its region, and why it was kept.
type Retained struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Region string `json:"region"`
	Reason string `json:"reason"`
}

// Event is one entry of the deployment's history.
type Event struct {
	At      time.Time `json:"at"`
	Action  string    `json:"action"` // deploy, promote, rollback, verify, approve, lock, unlock, disable, enable, hold-lifted
	By      string    `json:"by"`
	Release string    `json:"release,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// New returns an empty record for a deployment.
func New(name, project, region, account string) *Record {
	return &Record{
		Schema: Schema, Name: name, Project: project, Region: region, Account: account, State: StateNew,
		Units: map[string]Unit{}, Outputs: map[string]string{}, URLs: []string{},
		Verifications: []Verification{}, Approvals: []Approval{}, Retained: []Retained{}, History: []Event{},
	}
}

// LastVerification returns the newest verification, if any.
func (r *Record) LastVerification() (Verification, bool) {
	if len(r.Verifications) == 0 {
		return Verification{}, false
	}
	return r.Verifications[len(r.Verifications)-1], true
}

// AddVerification appends v, keeping the newest MaxVerifications.
func (r *Record) AddVerification(v Verification) {
	r.Verifications = append(r.Verifications, v)
	if n := len(r.Verifications); n > MaxVerifications {
		r.Verifications = append([]Verification(nil), r.Verifications[n-MaxVerifications:]...)
	}
}

// AddEvent appends e, keeping the newest MaxEvents.
func (r *Record) AddEvent(e Event) {
	r.History = append(r.History, e)
	if n := len(r.History); n > MaxEvents {
		r.History = append([]Event(nil), r.History[n-MaxEvents:]...)
	}
}

// AddApproval appends a, keeping the newest MaxApprovals.
func (r *Record) AddApproval(a Approval) {
	r.Approvals = append(r.Approvals, a)
	if n := len(r.Approvals); n > MaxApprovals {
		r.Approvals = append([]Approval(nil), r.Approvals[n-MaxApprovals:]...)
	}
}

// Approved returns the approval of release, if one was given.
func (r *Record) Approved(release string) (Approval, bool) {
	for i := len(r.Approvals) - 1; i >= 0; i-- {
		if r.Approvals[i].Release == release {
			return r.Approvals[i], true
		}
	}
	return Approval{}, false
}

// Images returns the image ids the record's releases (current and
// previous) use, as region/id: what cleanup and prune must keep.
func (r *Record) Images() []string {
	var out []string
	for _, rel := range []*Release{r.Release, r.Previous} {
		if rel == nil || r.State == StateDestroyed {
			continue
		}
		for region, id := range rel.Images {
			out = append(out, region+"/"+id)
		}
	}
	return out
}
