//go:build !kiln_fixture_builder

package main

import (
	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
)

// fixtureBackend is the local backend itself; the kiln_fixture_builder
// build for CI pipeline tests replaces its builder (fixture_builder.go).
func fixtureBackend(g *globalOptions, b *local.Backend) cloud.Backend { return b }
