// Package ownership decides which kiln-managed resources belong to this
// project, and so may be deleted by its destructive commands, and adopts
// resources made before kiln tagged its project.
//
// Several kiln projects (several teams, several checkouts) may share one
// account. kiln:managed=true says only that some kiln made a resource; the
// kiln:project tag, put on at creation, says which project did. A resource
// belongs to this project when its kiln:project is kiln.yaml's project and
// its kiln:use-case is a use case kiln.yaml names. Everything else kiln
// made is listed, never deleted: another project's, another checkout's
// use case, or one made before project tags existed (until adopted).
package ownership

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kiln-images/kiln/internal/cloud"
)

// Project is this project's identity: kiln.yaml's project name and the
// use cases it names. The zero Project owns nothing.
type Project struct {
	Name     string
	UseCases []string
	// CostKey and CostValue are the project's cost-allocation tag, which
	// kiln put on everything before it tagged projects: adoption takes
	// only resources carrying it (when the project has one).
	CostKey, CostValue string
}

// Verdict is what Project.Judge decided about one resource.
type Verdict int

const (
	// Ours: tagged with this project and one of its use cases.
	Ours Verdict = iota
	// Untagged: kiln-managed with no kiln:project tag, made by a kiln
	// older than project tags (or by hand): adoptable.
	Untagged
	// Other: another project's, or a use case kiln.yaml does not name.
	Other
)

// Judge decides whether a resource with tags belongs to p, and why not.
// The project tag is compared exactly (project names are lower case), as
// is the use case.
func (p Project) Judge(tags map[string]string) (Verdict, string) {
	project, tagged := tags[cloud.TagProject]
	switch {
	case p.Name == "":
		return Other, "no project to compare with"
	case !tagged || project == "":
		return Untagged, fmt.Sprintf("no %s tag: made before kiln tagged projects, or by another tool; "+
			"`kiln adopt` makes it this project's", cloud.TagProject)
	case project != p.Name:
		return Other, fmt.Sprintf("another project's (%s=%s)", cloud.TagProject, project)
	}
	uc := tags[cloud.TagUseCase]
	if uc != "" && !slices.Contains(p.UseCases, uc) {
		return Other, fmt.Sprintf("use case %q is not in this kiln.yaml (another checkout's, or removed); name it there to manage it", uc)
	}
	return Ours, ""
}

// Owns reports whether p owns a resource with tags.
func (p Project) Owns(tags map[string]string) bool {
	v, _ := p.Judge(tags)
	return v == Ours
}

// IsTrue reads a boolean tag the way people write it by hand: "true" in
// any case. Only tags that keep things (kiln:retain) are read this way; a
// tag that lets kiln delete or publish something is compared exactly.
func IsTrue(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "true") }
