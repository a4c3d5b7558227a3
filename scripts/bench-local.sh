#!/bin/sh
# bench-local.sh measures the local backend on this machine:
#  1. each phase of the example recipe (kiln init), run as its own command:
#     once with an empty base cache (cold) and WARM times with it warm;
#  2. replicating a 2 GiB image to 8 regions on one filesystem with
#     `kiln replicate`, side by side with `cp` of the same file 8 times.
# It writes docs/bench/local-phases.md and docs/bench/replicate.md.
#
# Needs what `make deps` installs, run as root (or with unshare set up).
# Environment: WARM=3 ROUNDS=3 SIZE=2147483648 REGIONS=8
set -eu
cd "$(dirname "$0")/.."
warm=${WARM:-3}
go build -o bin/kiln ./cmd/kiln
kiln=$PWD/bin/kiln
work=$(mktemp -d /var/tmp/kiln-bench-local.XXXXXX)
trap 'rm -rf "$work"' EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

"$kiln" init "$work/proj" >/dev/null
cfg=$work/proj/kiln.yaml
sed -i "s|    # cache_dir: .kiln/cache.*|    cache_dir: $work/cache|" "$cfg"

rows=$work/rows
: >"$rows"
for i in $(seq 0 "$warm"); do
	mode=warm
	if [ "$i" = 0 ]; then mode=cold; rm -rf "$work/cache"; fi
	t0=$(now)
	id=$("$kiln" build debian-sandbox -c "$cfg" 2>"$work/build.log")
	t1=$(now)
	"$kiln" test --run "$id" -c "$cfg" >/dev/null 2>&1
	t2=$(now)
	"$kiln" replicate --run "$id" -c "$cfg" >/dev/null 2>&1
	t3=$(now)
	"$kiln" publish --run "$id" -c "$cfg" >/dev/null 2>&1
	t4=$(now)
	hit=$(grep -o 'bootstrap (cache [a-z]*)' "$work/build.log" | head -1)
	echo "$mode $(secs "$t0" "$t1") $(secs "$t1" "$t2") $(secs "$t2" "$t3") $(secs "$t3" "$t4") $(secs "$t0" "$t4") $hit" >>"$rows"
	echo "$mode run: $(tail -1 "$rows")" >&2
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.2f\n", (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v m="$1" -v c="$2" '$1==m {print $c}' "$rows" | median; }
{
	echo "# Local backend: time of each phase of the example recipe"
	echo
	echo "Command: \`scripts/bench-local.sh\` (WARM=$warm). Machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the end,"
	echo "$(uname -r), qemu accelerator: see the test log (TCG where KVM does not work). Each phase is its own kiln command"
	echo "(so each pays process start and finding the run by its tags). Seconds; warm = median of $warm runs."
	echo
	echo "| base cache | build | test (boot) | replicate (3 regions) | publish | total |"
	echo "|---|---:|---:|---:|---:|---:|"
	echo "| cold | $(col cold 2) | $(col cold 3) | $(col cold 4) | $(col cold 5) | $(col cold 6) |"
	echo "| warm | $(col warm 2) | $(col warm 3) | $(col warm 4) | $(col warm 5) | $(col warm 6) |"
	echo
	echo "Every run (mode build test replicate publish total):"
	echo
	sed 's/^/    /' "$rows"
} >docs/bench/local-phases.md

go test ./bench/replicate -run '^$' -bench '^BenchmarkReplicate$' -benchtime 1x -timeout 60m \
	-args -size "${SIZE:-2147483648}" -regions "${REGIONS:-8}" -rounds "${ROUNDS:-3}" -out "$PWD/docs/bench/replicate.md"
cat docs/bench/local-phases.md docs/bench/replicate.md
