#!/bin/bash
# Fixture shell step with a #! line: runs under bash, not sh -e.
set -euo pipefail
[[ -n "${BASH_VERSION}" ]]
echo "bash ${BASH_VERSINFO[0]}" >/etc/kiln-fixture/bash.txt
