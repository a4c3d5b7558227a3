#!/bin/sh
# Runs inside the booted image. Exit status 0 means the image passes; the
# output is kept in the console log.
set -eu

fail() {
	echo "FAIL: $*"
	exit 1
}

# What provisioning did.
grep -q "kiln demo sandbox" /etc/motd || fail "/etc/motd lacks the welcome text"
id sandbox >/dev/null 2>&1 || fail "user sandbox does not exist"
[ -d /home/sandbox ] || fail "/home/sandbox does not exist"
grep -q "built, tested and published by kiln" /etc/kiln-demo/welcome.txt ||
	fail "/etc/kiln-demo/welcome.txt is missing or wrong"
mode=$(stat -c %a /etc/kiln-demo/welcome.txt)
[ "$mode" = 644 ] || fail "/etc/kiln-demo/welcome.txt has mode $mode, not 644"

# The demo web service answers its version (kiln gave the build KILN_VERSION).
version=$(cat /etc/kiln-demo/version)
[ -n "$version" ] && [ "$version" != unknown ] || fail "/etc/kiln-demo/version is empty or unknown"
python3 - "$version" <<'PY' || fail "the web service does not answer /health and /version"
import json, sys, time, urllib.request
want = sys.argv[1]
for _ in range(60):
    try:
        health = urllib.request.urlopen("http://127.0.0.1:8080/health", timeout=5).read()
        got = json.load(urllib.request.urlopen("http://127.0.0.1:8080/version", timeout=5))
        if health == b"ok\n" and got.get("version") == want:
            sys.exit(0)
        print("web service answered", health, got)
        sys.exit(1)
    except OSError:
        time.sleep(1)
print("web service not answering after 60 s")
sys.exit(1)
PY

# That the machine booted properly: multi-user.target reached (the tests may
# themselves run as part of the boot, so wait for it) and no unit failed.
i=0
until [ "$(systemctl is-active multi-user.target)" = active ]; do
	i=$((i + 1))
	[ "$i" -le 120 ] || fail "multi-user.target not active after 120 s"
	sleep 1
done
failed=$(systemctl list-units --state=failed --no-legend --plain)
[ -z "$failed" ] || fail "failed units: $failed"
state=$(systemctl is-system-running || true)
case "$state" in
running | starting) ;; # starting: these tests are part of the boot
*) fail "systemd state is $state" ;;
esac

echo "boot checks passed (systemd: $state)"
