#!/bin/sh
# Crash during snapshot churn: QEMU is SIGKILLed while snapshots of a busy
# origin are created and deleted in a loop. 64 KiB pool blocks.
# thin 0 (64 MiB = 1024 blocks) blocks 0-255 in full; snap 1 of thin 0;
# transaction id 1. Then the crash is armed: thin 0 gets endless random
# 4 KiB writes (fdatasync every 512) while a loop takes snap i of thin 0
# (i = 2, 3, ...), writes 3 blocks to it and deletes snap i-2 (from i = 4
# on; snap 1 is kept), until the kill 4 s later.
# @meta_mib 4
# @data_mib 256
# @crash_after 4
pool_create 128 64
thin_new 0 131072
wr 0 0 256 1 65536 base
snap_new 1 0 131072
msg "set_transaction_id 0 1"
crash_arm
wrc 0 1024 512 5 churn0 &
(
	i=2
	while :; do
		snap_new $i 0 131072
		wr $i $((i % 50)) 3 7 4096 snap$i
		if [ $i -ge 4 ]; then
			thin_deact $((i - 2))
			msg "delete $((i - 2))"
		fi
		echo "churn: snapshot $i" > /dev/console
		i=$((i + 1))
	done
) &
wait
