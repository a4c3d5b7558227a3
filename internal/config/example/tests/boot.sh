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
