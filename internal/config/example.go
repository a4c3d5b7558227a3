package config

import "embed"

// Example is the example project `kiln init` writes: fs.Sub(Example,
// "example") holds kiln.yaml, the scripts and files its recipe uses, its
// tests and a .gitignore. Embedding drops file modes; the scripts should be
// written executable.
//
//go:embed all:example
var Example embed.FS
