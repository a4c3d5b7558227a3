package deploy

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/config"
)

// UnitKind makes and looks after the units of one kind: qemu VMs and
// supervised processes on the local backend (package localunit),
// CloudFormation stacks and instances on aws. The deployment core knows
// units only through this interface; package unittest is the conformance
// suite every kind passes.
//
// Identity. A unit is named by its deployment, its name and its region;
// the kind derives the names of what it makes from those (a stack called
// kiln-<project>-<deployment>-<unit>, a state directory
// <state>/deployments/<deployment>/<unit>), so that every call finds what
// an earlier call, or an earlier kiln process, made.
//
// Tags. Everything a kind makes carries Unit.Tags from creation
// (kiln:managed, kiln:project, kiln:deployment, kiln:unit, kiln:release and
// the cost tag), where the service has tags at all; where a service does
// not pass tags on to what it creates (a stack's resources), the kind adds
// them and reads them back. Resources lists by these tags, which is how
// teardown finds what is left.
//
// Errors. Absent things are not errors where the contract says so (Status,
// Destroy); elsewhere an absent unit is an error matching
// cloud.ErrNotFound. Errors worth retrying after a pause match
// cloud.ErrThrottled or cloud.ErrNotYet (cloud.Retryable); the core
// retries those with backoff. Bad settings match cloud.ErrInvalid. Every
// other error is final for this call, and the core stops the deploy and
// reports it; a rerun starts over from Plan.
//
// Secrets. Unit.Inputs may hold secrets (Value.Secret). A kind hands them
// to the unit (environment, fw_cfg, NoEcho parameters) and never writes
// them to a plan, a status, a log line, a tag or a file of its state.
type UnitKind interface {
	// Plan says what Apply would do to make the unit match u, and
	// changes nothing. A unit that does not exist plans ActionCreate; one
	// that is stopped and otherwise matches plans ActionStart; one that
	// matches u (its token is u.Token) and runs plans ActionNone.
	Plan(ctx context.Context, u Unit) (UnitPlan, error)

	// Apply makes the unit match u and waits until it is up (a VM running
	// and its ports forwarded, a stack in CREATE_COMPLETE or
	// UPDATE_COMPLETE), then returns its status with its outputs. It is
	// idempotent by u.Token: calling it again with the same Unit, from
	// this process or another after a crash, converges on the one unit
	// and never makes a second VM, process or stack. A stopped unit is
	// started. A failure leaves the unit as the service left it (a stack
	// rolled back), for the next Apply or Destroy.
	Apply(ctx context.Context, u Unit) (UnitStatus, error)

	// Status reads the unit as it is. Nothing there is UnitAbsent with a
	// nil error. Status changes nothing.
	Status(ctx context.Context, u Unit) (UnitStatus, error)

	// SetRunning stops (running false) or starts the unit's compute
	// without deleting anything: VMs shut down cleanly, processes end,
	// instances stop. It is idempotent: stopping a stopped unit succeeds.
	// An absent unit is an error matching cloud.ErrNotFound. A unit
	// without compute of its own (a stack of storage only) succeeds and
	// does nothing.
	SetRunning(ctx context.Context, u Unit, running bool) error

	// Resources lists every resource of this kind in region whose tags
	// match tags (cloud.Match: an empty value matches any value), each
	// confirmed to exist. It is what teardown deletes and what it checks
	// is gone; resources kept on delete have Retain set.
	Resources(ctx context.Context, region string, tags map[string]string) ([]Resource, error)

	// Destroy removes the unit and everything it made except what it
	// retains, waiting until it is gone. It needs only u's Deployment,
	// Name, Region and Tags (a unit no longer in kiln.yaml can be
	// destroyed). Destroying an absent unit succeeds; an error matching
	// cloud.ErrNotYet means something still holds it (retry later).
	Destroy(ctx context.Context, u Unit) error
}

// Unit is what a unit should be: its identity, its settings and the
// release and values it runs with.
type Unit struct {
	Project    string
	Deployment string
	Name       string
	Region     string
	// Config holds the unit's settings from kiln.yaml; Config.Kind()
	// names its kind.
	Config *config.Unit
	// Image is the image the unit runs, in Region.
	Image Image
	// Release is the id of the release being deployed (tag kiln:release).
	Release string
	// Inputs are the deployment's resolved inputs.
	Inputs map[string]Value
	// Outputs are the outputs of the units applied before this one, named
	// UNIT.NAME, for placeholders such as {db.endpoint}.
	Outputs map[string]string
	// Tags go on everything the unit makes, at creation.
	Tags map[string]string
	// Token identifies the desired state: the same Unit gives the same
	// token, and a kind's deterministic client tokens and change set
	// names derive from it. Apply records it on the unit so that Status
	// can tell whether the unit is at it.
	Token string
	// Dir is the config's directory, against which relative paths in
	// Config are resolved.
	Dir string
	// Protect is the deployment's protect setting. Kinds that can guard
	// what they make against deletion in the cloud itself (a stack's
	// termination protection) turn that on at Apply, and off when it is
	// false; see Protector.
	Protect bool
}

// Image is a machine image a unit runs.
type Image struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Region  string `json:"region"`
	Arch    string `json:"architecture"`
	Version string `json:"version"`
}

// Value is an input's value. A secret's text is never printed: String
// and GoString hide it, so that a Value that reaches a log line or an
// error by mistake shows nothing.
type Value struct {
	Text   string
	Secret bool
}

func (v Value) String() string {
	if v.Secret {
		return "[secret]"
	}
	return v.Text
}

// GoString hides secrets from %#v too.
func (v Value) GoString() string { return fmt.Sprintf("deploy.Value{%q}", v.String()) }

// Action is what a plan does to a unit.
type Action string

const (
	ActionNone    Action = "none"    // the unit matches and runs
	ActionCreate  Action = "create"  // it does not exist
	ActionUpdate  Action = "update"  // it exists and is changed in place
	ActionReplace Action = "replace" // it exists and is made anew
	ActionStart   Action = "start"   // it matches but is stopped
)

// UnitPlan is what Apply would do.
type UnitPlan struct {
	Action Action `json:"action"`
	// Changes say what differs, for people ("image img-1 -> img-2",
	// "memory 512MiB -> 1GiB", a change set's resource changes). A
	// secret's value never appears; its name may.
	Changes []string `json:"changes"`
}

// UnitState is the state of a unit.
type UnitState string

const (
	UnitAbsent  UnitState = "absent"  // nothing exists
	UnitPending UnitState = "pending" // being made, changed or started
	UnitRunning UnitState = "running" // up
	UnitStopped UnitState = "stopped" // stopped on purpose (SetRunning false)
	UnitFailed  UnitState = "failed"  // it stopped by itself or a change failed; Problem says why
)

// UnitStatus is a unit as it is.
type UnitStatus struct {
	State UnitState `json:"state"`
	// Token is the token of the Apply the unit is at, "" when unknown.
	Token string `json:"token,omitempty"`
	// Outputs are what other units, hooks and checks may use, by name
	// ("url.http", "port.http", a stack's outputs).
	Outputs map[string]string `json:"outputs"`
	// Problem says what went wrong: "qemu exited with status 1 at ...",
	// a stack's status reason.
	Problem string `json:"problem,omitempty"`
	// Restarts counts how often the unit's supervisor restarted it.
	Restarts int `json:"restarts,omitempty"`
	// Drift lists differences from u that the kind sees besides the
	// token: a tag removed, a resource changed outside kiln.
	Drift []string `json:"drift"`
}

// Resource is one thing a unit made.
type Resource struct {
	// Type is the kind's name for it: "vm", "process", "overlay",
	// "AWS::CloudFormation::Stack", "AWS::EC2::Instance".
	Type   string            `json:"type"`
	ID     string            `json:"id"`
	Region string            `json:"region"`
	Tags   map[string]string `json:"tags"`
	// Parent is the resource this one belongs to (a stack's resource).
	Parent string `json:"parent,omitempty"`
	// Retain marks what the unit keeps on Destroy (a Retain deletion
	// policy, kiln:retain=true).
	Retain  bool      `json:"retain,omitempty"`
	Created time.Time `json:"created,omitzero"`
}

// Expand fills the placeholders of a unit's setting (see
// config.ExpandPlaceholders). extra adds names of the kind's own, such as
// "port.http". secret reports whether a secret input went into the
// result: such a value may only be handed to the unit.
func (u Unit) Expand(s string, extra map[string]string) (value string, secret bool, err error) {
	value, err = config.ExpandPlaceholders(s, func(name string) (string, error) {
		if v, ok := extra[name]; ok {
			return v, nil
		}
		if in, ok := strings.CutPrefix(name, "inputs."); ok {
			v, ok := u.Inputs[in]
			if !ok {
				return "", fmt.Errorf("{%s}: no input %q", name, in)
			}
			secret = secret || v.Secret
			return v.Text, nil
		}
		switch name {
		case "project":
			return u.Project, nil
		case "deployment":
			return u.Deployment, nil
		case "region":
			return u.Region, nil
		case "version":
			return u.Image.Version, nil
		case "image_id":
			return u.Image.ID, nil
		case "image_name":
			return u.Image.Name, nil
		}
		if v, ok := u.Outputs[name]; ok {
			return v, nil
		}
		return "", fmt.Errorf("{%s}: no such value (outputs so far: %s)", name, strings.Join(sortedKeys(u.Outputs), ", "))
	})
	return value, secret, err
}

// SecretTexts returns the texts of the secret inputs, for redacting
// output the unit's programs print.
func (u Unit) SecretTexts() []string {
	var out []string
	for _, v := range u.Inputs {
		if v.Secret && v.Text != "" {
			out = append(out, v.Text)
		}
	}
	return out
}

// UnitTags returns the tags everything of a deployment's unit carries.
func UnitTags(project, deployment, unit, release, costKey, costValue string) map[string]string {
	tags := map[string]string{
		cloud.TagManaged:    "true",
		cloud.TagProject:    project,
		cloud.TagDeployment: deployment,
		cloud.TagUnit:       unit,
		cloud.TagRelease:    release,
	}
	if costKey != "" {
		tags[costKey] = costValue
	}
	return tags
}

// WithTags returns a copy of u.Tags with extra added.
func (u Unit) WithTags(extra map[string]string) map[string]string {
	out := maps.Clone(u.Tags)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, extra)
	return out
}
