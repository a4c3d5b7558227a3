#!/bin/sh
# bench-local.sh measures the local backend on this machine side by side with
# its peer, scripts/peer-local.sh: the same image of the example recipe
# (kiln init) made by hand with mmdebstrap, sfdisk, mkfs, mtools, qemu-img and
# qemu.
#
#  1. cold: `kiln release` from an empty base cache, one process, as `make
#     demo` runs it; the peer bootstraps, builds, boot-tests and copies to 3
#     region directories;
#  2. warm: the recipe's provisioning script changed, the base cached: `kiln
#     build`, `kiln test`, `kiln replicate` (3 regions) and `kiln publish` as
#     separate commands, as CI jobs run them; the peer rebuilds from its base,
#     boot-tests and copies;
#  3. replication of a 2 GiB image to 8 regions: `kiln replicate` against cp.
#
# Rounds alternate which goes first. Every kiln run is profiled phase by phase
# from its own log (-v): bootstrap, provisioning, disk, export, import (hash,
# sync, record), boot, replication and publishing. Results: medians and
# ratios in docs/bench/local-phases.md (parts 1 and 2) and
# docs/bench/replicate.md (part 3), with the machine's load next to each run.
#
# Needs root and what `make deps` installs. Environment:
#   COLD=2 WARM=3          rounds of parts 1 and 2
#   KILN_BASELINE_REF=REF  also measure kiln built from this git ref
#   SKIP_REPLICATE=1       skip part 3; SIZE, REGIONS, ROUNDS configure it
set -eu
cd "$(dirname "$0")/.."
repo=$PWD
cold=${COLD:-2}
warm=${WARM:-3}
go build -o bin/kiln ./cmd/kiln
work=$(mktemp -d /var/tmp/kiln-bench-local.XXXXXX)
trap 'rm -rf "$work"' EXIT
variants="kiln"
cp bin/kiln "$work/kiln-kiln"
if [ -n "${KILN_BASELINE_REF:-}" ]; then
	base=$work/baseline-src
	mkdir -p "$base"
	git archive "$KILN_BASELINE_REF" | tar -x -C "$base"
	(cd "$base" && go build -o "$work/kiln-base" ./cmd/kiln)
	variants="kiln base"
	baseline_name=$(git rev-parse --short "$KILN_BASELINE_REF")
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
load() { cut -d' ' -f1 /proc/loadavg; }
rows=$work/rows
: >"$rows"
# row VARIANT MODE ROUND KEY=VALUE...: one measured run.
row() { echo "$*" >>"$rows"; echo "$*" >&2; }

# profile LOG prints key=value seconds for the phases found in a kiln -v
# log, from the times of its lines.
profile() {
	awk '
	function t(line,   s, a) {
		s = line; sub(/^time=[0-9-]*T/, "", s); sub(/Z .*/, "", s)
		split(s, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3]
	}
	/^time=/ { last = t($0) }
	/msg=start step="bootstrap/ { bs = t($0) }
	/msg=done step="bootstrap/ { be = t($0) }
	/msg=start step=disk/ { ds = t($0) }
	/msg=done step=disk/ { de = t($0); xe = de }
	/msg=done step="export / { xe = t($0) }
	/msg=done step="build build/ { bb = t($0) }
	/msg=start step="boot / { ts = t($0) }
	/msg=done step="boot / { te = t($0) }
	/msg=done step="test record result/ { tr = t($0) }
	END {
		if (be) printf " bootstrap=%.2f provision=%.2f", be - bs, ds - be
		if (de) printf " disk=%.2f export=%.2f", de - ds, xe - de
		if (bb) printf " import=%.2f", bb - xe
		if (te) printf " boot=%.2f", te - ts
		if (tr && last > tr) printf " replicate+publish=%.2f", last - tr
	}' "$1"
}

# kiln_cold V ROUND: a release from nothing, one process.
kiln_cold() {
	v=$1 proj=$work/$1-proj
	rm -rf "$proj" "$work/$1-cache"
	"$work/kiln-$v" init "$proj" >/dev/null
	sed -i "s|    # cache_dir: .kiln/cache.*|    cache_dir: $work/$v-cache|" "$proj/kiln.yaml"
	l0=$(load) t0=$(now)
	"$work/kiln-$v" release -v -c "$proj/kiln.yaml" debian-sandbox >/dev/null 2>"$work/$v-release.log"
	t1=$(now)
	row "$v cold $2 total=$(secs "$t0" "$t1")$(profile "$work/$v-release.log") load=$l0-$(load)"
}

# kiln_warm V ROUND: one command per phase after a change to the script.
kiln_warm() {
	v=$1 proj=$work/$1-proj
	echo "# round $2" >>"$proj/scripts/provision.sh"
	c="-c $proj/kiln.yaml"
	l0=$(load) t0=$(now)
	id=$("$work/kiln-$v" build -v $c debian-sandbox 2>"$work/$v-build.log")
	t1=$(now)
	"$work/kiln-$v" test -v --run "$id" $c >/dev/null 2>"$work/$v-test.log"
	t2=$(now)
	"$work/kiln-$v" replicate --run "$id" $c >/dev/null 2>&1
	t3=$(now)
	"$work/kiln-$v" publish --run "$id" $c >/dev/null 2>&1
	t4=$(now)
	row "$v warm $2 build=$(secs "$t0" "$t1")$(profile "$work/$v-build.log") test=$(secs "$t1" "$t2")$(profile "$work/$v-test.log") replicate=$(secs "$t2" "$t3") publish=$(secs "$t3" "$t4") total=$(secs "$t0" "$t4") load=$l0-$(load)"
}

# peer RUN MODE ROUND: the hand recipe; cold bootstraps first.
peer_run() {
	p=$work/peer proj=$work/peer-proj
	if [ "$1" = cold ]; then
		rm -rf "$p" "$proj"
		"$work/kiln-kiln" init "$proj" >/dev/null
	else
		echo "# round $2" >>"$proj/scripts/provision.sh"
	fi
	l0=$(load) t0=$(now)
	out=$( {
		[ "$1" = warm ] || scripts/peer-local.sh bootstrap "$p"
		t1=$(now)
		scripts/peer-local.sh build "$p" "$proj"
		echo "phase build $(secs "$t1" "$(now)")"
		scripts/peer-local.sh test "$p" "$proj"
		scripts/peer-local.sh replicate "$p" 3
	})
	t2=$(now)
	row "peer $1 $2 $(echo "$out" | awk '{ printf "%s=%s ", $2, $3 }')total=$(secs "$t0" "$t2") load=$l0-$(load)"
}

for i in $(seq 1 "$cold"); do
	if [ $((i % 2)) = 1 ]; then
		for v in $variants; do kiln_cold "$v" "$i"; done
		peer_run cold "$i"
	else
		peer_run cold "$i"
		for v in $variants; do kiln_cold "$v" "$i"; done
	fi
done
for i in $(seq 1 "$warm"); do
	if [ $((i % 2)) = 1 ]; then
		for v in $variants; do kiln_warm "$v" "$i"; done
		peer_run warm "$i"
	else
		peer_run warm "$i"
		for v in $variants; do kiln_warm "$v" "$i"; done
	fi
done

# med VARIANT MODE KEY: the median of KEY over the runs, or "–".
med() {
	awk -v v="$1" -v m="$2" -v k="$3" '
	$1 == v && $2 == m { for (i = 4; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) x[n++] = kv[2] } }
	END {
		if (!n) { print "–"; exit }
		for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		if (n % 2) printf "%.1f\n", x[(n - 1) / 2]; else printf "%.1f\n", (x[n / 2 - 1] + x[n / 2]) / 2
	}' "$rows"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "–" }'; }
# line MODE LABEL KILNKEY PEERKEY: a table row, kiln (and baseline) against the peer.
line() {
	k=$(med kiln "$1" "$3") p=$(med peer "$1" "$4")
	printf '| %s | %s |' "$2" "$k"
	if [ -n "${baseline_name:-}" ]; then printf ' %s |' "$(med base "$1" "$3")"; fi
	printf ' %s | %s |\n' "$p" "$(ratio "$k" "$p")"
}
header() {
	printf '| phase | kiln |'
	if [ -n "${baseline_name:-}" ]; then printf ' kiln %s |' "$baseline_name"; fi
	printf ' peer | kiln / peer |\n|---|---:|'
	if [ -n "${baseline_name:-}" ]; then printf -- '---:|'; fi
	printf -- '---:|---:|\n'
}
{
	echo "# Local backend: where the time of a release goes"
	echo
	echo "Command: \`scripts/bench-local.sh\` (COLD=$cold WARM=$warm${KILN_BASELINE_REF:+ KILN_BASELINE_REF=$KILN_BASELINE_REF})."
	echo "Machine: $(nproc) cores, $(uname -r), qemu under TCG (KVM does not work here). Load average at the"
	echo "start and end of each run in the list below; the machine was shared while it ran. Seconds, medians."
	echo "The peer is \`scripts/peer-local.sh\`: the same image by hand (mmdebstrap, sfdisk, mkfs.ext4, mtools,"
	echo "qemu-img, qemu with OVMF), its test run in the booted guest by a unit baked into the image."
	echo
	echo "## Cold: \`make demo\`'s release, empty base cache"
	echo
	echo "kiln: \`kiln release\` in one process. Peer: bootstrap, build, boot test, copies to 3 directories."
	echo
	header
	line cold "bootstrap (mmdebstrap)" bootstrap bootstrap
	line cold "provisioning" provision provision
	line cold "  peer: of which copying the base" none copy-base
	line cold "disk (sfdisk, mkfs.ext4 -d, ESP)" disk disk
	line cold "export qcow2" export export
	line cold "import into the store (hash, sync, record)" import none
	line cold "boot test" boot boot
	line cold "replicate + publish, 3 regions (peer: cp)" replicate+publish replicate
	line cold "**total**" total total
	echo
	echo "## Warm: rebuild after changing the provisioning script, base cached"
	echo
	echo "kiln: one command per phase, as CI jobs run them (each pays process start and finding the run)."
	echo
	header
	line warm "**build, up to the boot test**" build build
	line warm "  provisioning" provision provision
	line warm "  peer: of which copying the base" none copy-base
	line warm "  disk" disk disk
	line warm "  export qcow2" export export
	line warm "  import into the store" import none
	line warm "**boot test** (\`kiln test\`)" test boot
	line warm "  of which qemu, start to verdict" boot boot
	line warm "**replicate, 3 regions** (peer: cp)" replicate replicate
	line warm "publish" publish none
	line warm "total" total total
	echo
	echo "Every run (variant mode round phase=seconds …; load=start-end):"
	echo
	sed 's/^/    /' "$rows"
} >docs/bench/local-phases.md
cat docs/bench/local-phases.md

if [ -z "${SKIP_REPLICATE:-}" ]; then
	go test ./bench/replicate -run '^$' -bench '^BenchmarkReplicate$' -benchtime 1x -timeout 60m \
		-args -size "${SIZE:-2147483648}" -regions "${REGIONS:-8}" -rounds "${ROUNDS:-3}" -out "$repo/docs/bench/replicate.md"
	cat docs/bench/replicate.md
fi
