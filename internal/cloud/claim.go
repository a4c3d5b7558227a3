package cloud

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Claimer is implemented by backends that can hold a leased, exclusive
// claim on a name that every machine acting in the account sees: the cloud
// is the shared state, so two kiln processes on two machines cannot both
// hold it. kiln claims a use case, architecture and channel for the length
// of a release, so that two releases of the same thing never run at once.
type Claimer interface {
	// Claim takes c.Name in c.Region for c.Holder until c.Until. A claim
	// the same holder has is renewed. An expired claim of another holder
	// is taken over. A live claim of another holder is an error matching
	// ErrClaimed, a *ClaimedError saying who holds it and until when.
	Claim(ctx context.Context, c Claim) error
	// Unclaim gives the claim up if c.Holder holds it; otherwise, or when
	// there is none, it does nothing.
	Unclaim(ctx context.Context, c Claim) error
}

// Claim is a claim on a name.
type Claim struct {
	Region string
	Name   string
	Holder string    // who holds it: a run's asset id
	Until  time.Time // when the claim lapses unless renewed
	// Tags go on whatever holds the claim in the cloud, at creation, so
	// that cleanup finds it with its run.
	Tags map[string]string
}

// ErrClaimed is matched by errors about a name another holder claims.
var ErrClaimed = errors.New("claimed by another holder")

// ClaimedError says who holds a claim.
type ClaimedError struct {
	Name, Holder string
	Until        time.Time
}

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("%s is claimed by %s until %s", e.Name, e.Holder, e.Until.UTC().Format(time.RFC3339))
}

func (e *ClaimedError) Is(target error) bool { return target == ErrClaimed }
