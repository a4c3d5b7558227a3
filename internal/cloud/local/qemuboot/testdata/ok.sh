#!/bin/sh
# Passes in a booted fixture image: systemd is init, the root is the ext4
# partition mounted read-write, and the provisioning is there.
set -e
echo "ok.sh: checking the booted image"
[ "$(cat /proc/1/comm)" = systemd ]
grep -q '^/dev/vda2 / ext4 rw' /proc/mounts
test -f /etc/kiln-fixture/ansible.txt
echo "ok.sh: all good"
