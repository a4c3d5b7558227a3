package report

import "github.com/kiln-images/kiln/internal/ownership"

// Adopt is kiln adopt: the kiln-managed resources without a kiln:project
// tag, each planned to be tagged with this project or left (with the
// reason), and with --apply what became of each. The type is ownership's,
// which produces it.
type Adopt = ownership.AdoptReport
