package forge

import (
	"context"
	"errors"
	"fmt"
)

// The forges kiln talks to.
const (
	GitLab = "gitlab"
	GitHub = "github"
)

// Request is a merge request (GitLab) or pull request (GitHub).
type Request struct {
	// Number is the request's number in its project: GitLab's iid (!12),
	// GitHub's number (#12).
	Number int    `json:"number"`
	URL    string `json:"url"` // its web page
	// State is the forge's word for it: opened (GitLab), open (GitHub),
	// merged, closed.
	State        string `json:"state"`
	SourceBranch string `json:"source_branch"`
	TargetBranch string `json:"target_branch"`
	Title        string `json:"title"`
	// Description is its Markdown text (GitLab's description, GitHub's
	// body).
	Description string `json:"-"`
}

// NewRequest is what a request is opened with.
type NewRequest struct {
	SourceBranch, TargetBranch string
	Title                      string
	Description                string // Markdown
}

// Forge is a project on a forge.
type Forge interface {
	// Name is the forge's kind: GitLab or GitHub.
	Name() string
	// FindOpen returns the open request from source into target, or nil
	// when there is none.
	FindOpen(ctx context.Context, source, target string) (*Request, error)
	// Open opens a request. When one from the same source branch is open
	// already it returns an error matching ErrExists.
	Open(ctx context.Context, nr NewRequest) (*Request, error)
	// Update sets the title and description of request number.
	Update(ctx context.Context, number int, title, description string) (*Request, error)
}

// ErrExists is matched by Open's error when the forge refused a request
// because one from the same branch is open already.
var ErrExists = errors.New("a request from this branch is already open")

// Outcome says what Ensure did.
type Outcome int

const (
	Found   Outcome = iota // the open request says what nr says
	Created                // opened by this call
	Updated                // found with another title or description, which this call set to nr's
)

// Ensure returns the open request from nr's source branch into its target,
// opening it when there is none, and setting its title and description to
// nr's when they differ (the branch was made again on a newer target, so
// the diff the description shows changed). The lookup comes first, and a
// refusal because one exists (another kiln opened it meanwhile, or an
// earlier attempt's answer was lost) is answered with the lookup again, so
// reruns never open a second request.
func Ensure(ctx context.Context, f Forge, nr NewRequest) (*Request, Outcome, error) {
	req, created, err := ensureOpen(ctx, f, nr)
	switch {
	case err != nil:
		return nil, Found, err
	case created:
		return req, Created, nil
	case req.Title == nr.Title && req.Description == nr.Description:
		return req, Found, nil
	}
	if req, err = f.Update(ctx, req.Number, nr.Title, nr.Description); err != nil {
		return nil, Found, err
	}
	return req, Updated, nil
}

func ensureOpen(ctx context.Context, f Forge, nr NewRequest) (req *Request, created bool, err error) {
	if req, err = f.FindOpen(ctx, nr.SourceBranch, nr.TargetBranch); err != nil || req != nil {
		return req, false, err
	}
	req, err = f.Open(ctx, nr)
	if errors.Is(err, ErrExists) {
		found, ferr := f.FindOpen(ctx, nr.SourceBranch, nr.TargetBranch)
		if ferr != nil {
			return nil, false, ferr
		}
		if found == nil {
			// Open from this branch, but into another target.
			return nil, false, fmt.Errorf("%s: %w, but not into %s: close it or set forge.target_branch", f.Name(), err, nr.TargetBranch)
		}
		return found, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return req, true, nil
}
