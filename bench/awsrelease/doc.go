// Package awsrelease benchmarks a release on the aws backend against
// HashiCorp Packer's amazon-ebs builder, side by side against one moto.
//
// Both tools reach moto through the same two HTTP servers: a Recorder that
// holds every request for a fixed latency (150 ms by default, roughly a
// cross-region round trip to the EC2 API) and logs what it asked for, then
// awstest's Stub, which answers the few EC2 calls moto lacks (kiln's boot
// test reads a PASS marker from GetConsoleOutput; publish sets a
// deprecation time). Packer never calls those, so the Stub is a plain
// forwarder for it.
//
// The benchmark itself is BenchmarkRelease in release_test.go; run it with
// scripts/bench-aws.sh, which writes docs/bench/aws-release.md.
package awsrelease
