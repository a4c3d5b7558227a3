#!/bin/sh
echo "hang.sh: sleeping forever"
while :; do sleep 1000; done
