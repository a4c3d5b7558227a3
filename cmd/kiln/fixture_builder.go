//go:build kiln_fixture_builder

package main

import (
	"fmt"

	"github.com/kiln-images/kiln/internal/cloud"
	"github.com/kiln-images/kiln/internal/cloud/local"
	"github.com/kiln-images/kiln/internal/cloud/local/localfixture"
)

// This build of kiln (go build -tags kiln_fixture_builder) replaces the
// local backend's builder and boot tester with localfixture's stand-ins,
// so that a CI pipeline test releases in seconds; everything else is the
// real kiln. No release build has it, and every command it runs says so.
func fixtureBackend(g *globalOptions, b *local.Backend) cloud.Backend {
	fmt.Fprintln(g.streams.err, "kiln: test build: the local builder and boot tester are fixtures (-tags kiln_fixture_builder); images are random bytes and are not booted")
	return &localfixture.Backend{Backend: b}
}
