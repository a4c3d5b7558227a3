// Package awsdestroy measures `kiln destroy` of a deployment of about 200
// resources on moto, behind a proxy that adds a fixed latency to every
// request, side by side with the minimal sequence of calls the same
// teardown needs (Minimal): requests, wall time and round trips on the
// critical path. Run it with scripts/bench-destroy.sh; it writes
// docs/bench/aws-destroy.md.
package awsdestroy
