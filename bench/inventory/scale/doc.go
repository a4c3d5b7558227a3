// Package scale holds what the inventory and drift benchmarks share: a
// project on either backend filled with thousands of real images, a proxy
// that counts the AWS API calls passing through it, the minimal scanners
// that do only the calls a scan cannot do without (the peer every kiln
// number is compared with), a runner for the kiln binary, and the harness
// both programs run in: their common flags, projects, moto behind the
// proxy, the kiln variants and the report.
//
// The benchmarks are the programs in bench/inventory and bench/drift; run
// them with scripts/bench-scale.sh, which writes docs/bench/scale.md.
package scale
