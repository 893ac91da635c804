#!/bin/sh
# Many devices and a deep mapping tree. 64 KiB pool blocks, no block
# zeroing, 5 GiB data (81920 blocks). 300 thin devices, ids 0-299 (so the
# top-level mapping tree and the details tree have two levels): thin i
# (64 MiB) gets 1 + i mod 5 blocks at 3i mod 900 on, stride 3. Thin 7
# (8 GiB) also gets 65536 more blocks: 4096 runs of 16 consecutive blocks
# (of its 8192 runs), the runs in a scattered order, 4 KiB per block, so its
# mapping tree has three levels (each run maps to consecutive data blocks,
# which keeps the dumps short).
# Transaction id 300. The metadata device is 3 MiB (768 blocks, about 620
# in use at the end) rather than 8: every commit leaves stale nodes behind,
# and a bigger device would only keep more of them in the (committed) image.
# @meta_mib 3
# @data_mib 5120
# @timeout 4000
pool_create 128 1024 "" skip_block_zeroing
i=0
while [ $i -lt 300 ]; do
	msg "create_thin $i"
	sz=131072
	[ $i -eq 7 ] && sz=16777216
	thin_act $i $sz
	wr $i $((3 * i % 900)) $((1 + i % 5)) 3 4096 dev$i
	[ $i -eq 7 ] || thin_deact $i
	i=$((i + 1))
done
checkpoint devices
wrruns 7 8192 4096 1 16 big
msg "set_transaction_id 0 300"
checkpoint written
final_status
teardown
