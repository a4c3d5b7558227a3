// Package scale holds what the inventory and drift benchmarks share: a
// project on either backend filled with thousands of real images, a proxy
// that counts the AWS API calls passing through it, the minimal scanners
// that do only the calls a scan cannot do without (the peer every kiln
// number is compared with), and a runner for the kiln binary.
//
// The benchmarks are the programs in bench/inventory and bench/drift; run
// them with scripts/bench-scale.sh, which writes docs/bench/scale.md.
package scale
