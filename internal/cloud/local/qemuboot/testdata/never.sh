#!/bin/sh
# Must not run: it comes after a failing test.
echo "never.sh ran"
