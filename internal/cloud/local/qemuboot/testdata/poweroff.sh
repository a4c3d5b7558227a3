#!/bin/sh
# Powers the guest off before the agent can report: qemu exits with no
# result marker on the console.
echo "poweroff.sh: powering off"
poweroff -f
sleep 60
