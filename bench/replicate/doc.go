// Package replicate benchmarks replication on the local backend: a 2 GiB
// image copied to 8 regions on one filesystem by `kiln replicate`, side by
// side with `cp` of the same file 8 times, measuring wall time and the bytes
// each physically wrote. Run it with scripts/bench-local.sh.
package replicate
