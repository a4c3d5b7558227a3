package report

import (
	"github.com/kiln-images/kiln/internal/cdn"
	"github.com/kiln-images/kiln/internal/distribute"
)

// Index is kiln index: what was (or would be) placed in the download tree.
type Index struct {
	Schema string `json:"schema"`
	*distribute.Report
}

// VerifyImage is kiln verify --image: a downloaded file checked against the
// signed index.
type VerifyImage struct {
	Schema string `json:"schema"`
	*distribute.ImageCheck
}

// Distribution is kiln distribution plan|deploy: the change sets of the
// download stacks, executed or not.
type Distribution struct {
	Schema string `json:"schema"`
	*cdn.Report
}
