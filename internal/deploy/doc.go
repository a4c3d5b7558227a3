// Package deploy runs released images as named deployments: it resolves a
// deployment's release and inputs, plans and applies its units through
// their kinds (UnitKind), runs its hooks, verifies it, and keeps its
// record in git. Promotion moves a verified release from one deployment
// to the next behind gates; rollback redeploys the release a git ref
// recorded.
//
// The unit kinds live in packages of their own (localunit for the local
// backend); package unittest is the conformance suite they pass.
package deploy
