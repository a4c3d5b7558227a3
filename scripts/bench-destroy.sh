#!/bin/sh
# bench-destroy.sh measures `kiln destroy` of a deployment of 199 resources
# (six stacks, buckets with versions and delete markers, repositories with
# images, volumes, snapshots, a role; four retained) against the minimal
# sequence of calls the same teardown needs, on moto behind a proxy adding
# 150 ms to every request, interleaved round by round, and writes the
# table into docs/bench/aws-destroy.md (between the GENERATED markers).
#
# Needs: go, moto_server (moto 5.x).
#
# Environment:
#   ROUNDS=3               rounds (each runs both variants once)
#   LOGS=DIR               keep every run's request log as CSV here
#   BENCH_ARGS="..."       more flags (-latency, -poll, -concurrency; see
#                          bench/awsdestroy/destroy_test.go)
set -eu
cd "$(dirname "$0")/.."

rounds=${ROUNDS:-3}
logs=${LOGS:-$(mktemp -d /tmp/kiln-bench-destroy.XXXXXX)}
case $logs in /*) ;; *) logs=$PWD/$logs ;; esac
echo "request logs: $logs" >&2
go test ./bench/awsdestroy -run '^$' -bench '^BenchmarkDestroy$' -benchtime 1x -timeout 2h -args \
	-rounds "$rounds" -out "$PWD/docs/bench/aws-destroy.md" -logs "$logs" \
	-command "ROUNDS=$rounds scripts/bench-destroy.sh" ${BENCH_ARGS:-}
