#!/bin/sh
# Runs as root inside the image while it is built: installs the demo web
# service (copied to /opt/kiln-demo-web by the step before) and networking,
# and records the image's version, which kiln gives every shell step as
# KILN_VERSION, for the service's /version.
set -eu

mkdir -p /etc/kiln-demo
printf '%s\n' "${KILN_VERSION:-unknown}" >/etc/kiln-demo/version

install -m 0644 /opt/kiln-demo-web/kiln-demo-web.service /etc/systemd/system/kiln-demo-web.service
install -D -m 0644 /opt/kiln-demo-web/80-dhcp.network /etc/systemd/network/80-dhcp.network
systemctl enable kiln-demo-web.service systemd-networkd.service
# Nothing here waits for the network; a machine without one (the boot
# test) must not sit for two minutes and then report a failed unit.
systemctl mask systemd-networkd-wait-online.service
