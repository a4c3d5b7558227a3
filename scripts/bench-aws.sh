#!/bin/sh
# bench-aws.sh runs the aws release benchmark: kiln versus HashiCorp
# Packer's amazon-ebs builder, against one moto behind a proxy that adds
# 150 ms to every request, interleaved round by round. It writes the
# results into docs/bench/aws-release.md (between the GENERATED markers)
# and keeps every run's request log as CSV.
#
# Needs: go, moto_server (moto 5.x), packer (Debian package, 1.6.6).
#
# Environment:
#   ROUNDS=5               rounds (each runs every variant once)
#   LOGS=DIR               where the request logs go (default: a new temporary directory)
#   KILN_BASELINE_REF=REF  also measure `kiln release` built from this git ref, side by side
#   BENCH_ARGS="..."       more flags for the benchmark (-latency, -poll, -concurrency; see
#                          bench/awsrelease/release_test.go)
set -eu
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-5}
logs=${LOGS:-$(mktemp -d /tmp/kiln-bench-aws.XXXXXX)}
case $logs in /*) ;; *) logs=$PWD/$logs ;; esac
set -- -rounds "$rounds" -out "$PWD/docs/bench/aws-release.md" -logs "$logs" \
	-command "ROUNDS=$rounds ${KILN_BASELINE_REF:+KILN_BASELINE_REF=$KILN_BASELINE_REF }scripts/bench-aws.sh" \
	${BENCH_ARGS:-}

if [ -n "${KILN_BASELINE_REF:-}" ]; then
	base=$(mktemp -d /tmp/kiln-baseline.XXXXXX)
	git archive "$KILN_BASELINE_REF" | tar -x -C "$base"
	(cd "$base" && go build -o "$base/kiln" ./cmd/kiln)
	set -- "$@" -kiln-baseline "$base/kiln" -kiln-baseline-name "$(git rev-parse --short "$KILN_BASELINE_REF")"
fi

echo "request logs: $logs" >&2
go test ./bench/awsrelease -run '^$' -bench '^BenchmarkRelease$' -benchtime 1x -timeout 3h -args "$@"
