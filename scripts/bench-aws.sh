#!/bin/sh
# bench-aws.sh runs the aws benchmarks against one moto behind a proxy that
# adds 150 ms to every request, interleaved round by round, and keeps every
# run's request log as CSV:
#   - the release: kiln versus HashiCorp Packer's amazon-ebs builder, into
#     docs/bench/aws-release.md (between the GENERATED markers);
#   - distribution to 16 regions: an instance build + CopyImage against
#     build: {method: upload} of the example recipe's 2 GiB disk, through an
#     uplink of UPLOAD_BANDWIDTH, into docs/bench/aws-upload.md.
#
# Needs: go, moto_server (moto 5.x), packer (Debian package, 1.6.6), and
# for the upload benchmark the local builder's tools (make deps) as root.
#
# Environment:
#   ROUNDS=5               rounds of the release benchmark (each runs every variant once)
#   UPLOAD_ROUNDS=3        rounds of the upload benchmark
#   UPLOAD_BANDWIDTH=1e9   the modelled uplink, bits per second
#   ONLY=release|upload    run one of the two
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
if [ "${ONLY:-release}" = release ]; then
	go test ./bench/awsrelease -run '^$' -bench '^BenchmarkRelease$' -benchtime 1x -timeout 3h -args "$@"
fi
if [ "${ONLY:-upload}" = upload ]; then
	urounds=${UPLOAD_ROUNDS:-3}
	go test ./bench/awsrelease -run '^$' -bench '^BenchmarkUpload$' -benchtime 1x -timeout 3h -args \
		-rounds "$urounds" -bandwidth "${UPLOAD_BANDWIDTH:-1e9}" -upload-out "$PWD/docs/bench/aws-upload.md" -logs "$logs" \
		-command "ONLY=upload UPLOAD_ROUNDS=$urounds scripts/bench-aws.sh" ${BENCH_ARGS:-}
fi
