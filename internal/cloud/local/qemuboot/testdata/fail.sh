#!/bin/sh
echo "fail.sh: failing on purpose"
exit 3
