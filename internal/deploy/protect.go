package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrProtected is matched by the error of a kind's Destroy when the cloud
// itself guards the unit against deletion (a stack's termination
// protection, set because the deployment has protect: true). Teardown
// lifts it with the kind's Protector, when told to, and destroys again.
var ErrProtected = errors.New("protected against deletion")

// Protector is implemented by unit kinds that can guard what they make
// against deletion in the cloud (aws stacks: termination protection).
// Apply sets the protection from Unit.Protect; teardown checks for this
// interface where it needs it.
type Protector interface {
	// SetProtected turns the protection on or off; it needs only u's
	// Deployment, Name, Region and Tags. An absent unit is an error
	// matching cloud.ErrNotFound.
	SetProtected(ctx context.Context, u Unit, on bool) error
}

// DestroyError is the error of a kind's Destroy when the service could not
// delete some of the unit's resources: a stack in DELETE_FAILED, with the
// resource that failed and the service's reason ("The bucket you tried to
// delete is not empty"). Teardown acts on it (empties the bucket) and
// destroys again; retrying as it is does not help, so it is not
// retryable. The unit is left as the service left it.
type DestroyError struct {
	Deployment, Unit, Region string
	// Resource is the unit's own resource that did not go, e.g. "stack
	// kiln-demo-dev-app"; Status is its state and Reason the service's
	// word on it.
	Resource, Status, Reason string
	// Failed lists the resources the service names as not deleted.
	Failed []FailedResource
}

// FailedResource is one resource a delete failed on.
type FailedResource struct {
	// Type is the service's type name ("AWS::S3::Bucket"), ID its
	// physical id (the bucket's name), LogicalID its name in the
	// template.
	Type      string `json:"type"`
	ID        string `json:"id"`
	LogicalID string `json:"logical_id,omitempty"`
	Reason    string `json:"reason"`
}

func (e *DestroyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deployment %s unit %s in %s: %s is %s", e.Deployment, e.Unit, e.Region, e.Resource, e.Status)
	if e.Reason != "" {
		fmt.Fprintf(&b, ": %s", e.Reason)
	}
	for _, f := range e.Failed {
		fmt.Fprintf(&b, "; %s %s (%s) was not deleted: %s", f.Type, f.ID, f.LogicalID, f.Reason)
	}
	return b.String()
}
