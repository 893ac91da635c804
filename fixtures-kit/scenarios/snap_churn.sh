#!/bin/sh
# Snapshots created and deleted repeatedly (clean shutdown). 64 KiB pool
# blocks. thin 0 (64 MiB) blocks 0-127 in full. Then 12 rounds: snap i of
# thin 0; the origin rewrites 4 blocks at 8i mod 128 (copy-on-write), snap
# i gets 2 new blocks 200+2i, 201+2i; from round 3 on snap i-1 is deleted.
# Left: thin 0, snap 1 (the oldest) and snap 12; pool time 12, transaction
# id 5.
# @meta_mib 4
# @data_mib 256
pool_create 128 64
thin_new 0 131072
wr 0 0 128 1 65536 base
i=1
while [ $i -le 12 ]; do
	snap_new $i 0 131072
	wr 0 $((8 * i % 128)) 4 1 4096 origin$i
	wr $i $((200 + 2 * i)) 2 1 4096 snap$i
	if [ $i -ge 3 ]; then
		thin_deact $((i - 1))
		msg "delete $((i - 1))"
	fi
	i=$((i + 1))
done
msg "set_transaction_id 0 5"
checkpoint churned
final_status
teardown
