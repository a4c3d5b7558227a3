#!/bin/sh
# Runs as root inside the image while it is built. Whatever it does, the
# tests in tests/boot.sh check on the booted machine.
set -eu

cat >/etc/motd <<'MOTD'

Welcome to the kiln demo sandbox.

MOTD

# An unprivileged user to work as.
if ! id sandbox >/dev/null 2>&1; then
	useradd --create-home --shell /bin/bash sandbox
fi
