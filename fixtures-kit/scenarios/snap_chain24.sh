#!/bin/sh
# A chain of 24 snapshots, each a snapshot of the one before. 64 KiB pool
# blocks. thin 0 (64 MiB) blocks 0-1023 all written (4 KiB each); then for
# i = 1..24 snap i of i-1 is taken and gets 4 blocks rewritten at
# 40i..40i+3, so each snapshot differs from its parent in one leaf and
# shares the rest. Pool time 24, transaction id 1.
# @meta_mib 4
# @data_mib 256
pool_create 128 64
thin_new 0 131072
wr 0 0 1024 1 4096 base
i=1
while [ $i -le 24 ]; do
	snap_new $i $((i - 1)) 131072
	wr $i $((40 * i)) 4 1 4096 snap$i
	i=$((i + 1))
done
msg "set_transaction_id 0 1"
checkpoint chain
final_status
teardown
