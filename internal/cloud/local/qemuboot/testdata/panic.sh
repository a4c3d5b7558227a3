#!/bin/sh
# Crashes the kernel through sysrq: the console shows a kernel panic.
echo "panic.sh: crashing the kernel"
echo 1 >/proc/sys/kernel/sysrq
echo c >/proc/sysrq-trigger
sleep 60
