package report

import (
	"github.com/kiln-images/kiln/internal/deploy"
	"github.com/kiln-images/kiln/internal/teardown"
)

// Deploy is kiln deploy: the plan of a deployment's units, applied or not,
// and the verification at its end.
type Deploy struct {
	Schema string `json:"schema"`
	*deploy.Report
	Commit string `json:"commit,omitempty"` // the record's commit, with --commit
}

// Deployments is kiln deployments: every deployment and its record's state.
type Deployments struct {
	Schema      string             `json:"schema"`
	Deployments []deploy.ListEntry `json:"deployments"`
}

// Status is kiln status: each deployment's record against what runs.
type Status struct {
	Schema      string                 `json:"schema"`
	Deployments []*deploy.StatusReport `json:"deployments"`
}

// Verify is kiln verify DEPLOYMENT: the checks run and their outcome.
type Verify struct {
	Schema string `json:"schema"`
	*deploy.VerifyReport
	Commit string `json:"commit,omitempty"`
}

// DeploymentChange is kiln lock, unlock, approve, disable and enable: the
// change made to a deployment's record.
type DeploymentChange struct {
	Schema string `json:"schema"`
	*deploy.Change
	Commit string `json:"commit,omitempty"`
}

// PromoteDeployment is kiln promote --from DEP --to DEP: the gates, and the
// target's deploy when they passed.
type PromoteDeployment struct {
	Schema string `json:"schema"`
	*deploy.PromoteReport
	Passed bool   `json:"passed"`
	Commit string `json:"commit,omitempty"`
}

// RollbackDeployment is kiln rollback DEP --ref REF: the deploy of the
// release the record had at REF.
type RollbackDeployment struct {
	Schema string `json:"schema"`
	*deploy.Report
	Commit string `json:"commit,omitempty"`
}

// Destroy is kiln destroy: the teardown plan of a deployment, carried out
// or not, and the verification that nothing but the kept is left.
type Destroy struct {
	Schema string `json:"schema"`
	*teardown.Report
	Commit string `json:"commit,omitempty"`
}
