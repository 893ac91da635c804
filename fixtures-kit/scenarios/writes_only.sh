#!/bin/sh
# Several commits of writes only: no device is created, deleted or
# snapshotted after the start, nothing is discarded. 64 KiB pool blocks.
# thin 0 and thin 1 (64 MiB each) are created, transaction id 1. Then six
# rounds, each ending with an fsync (a flush, so the kernel commits): round
# r writes new blocks 20r..20r+9 of thin 0 and 10 blocks of thin 1 at
# stride 7 from 3r, plus an overwrite of an already mapped block (no
# metadata change). Transaction id 2 at the end.
# @meta_mib 4
# @data_mib 256
pool_create 128 64
thin_new 0 131072
thin_new 1 131072
msg "set_transaction_id 0 1"
for r in 0 1 2 3 4 5; do
	wr 0 $((20 * r)) 10 1 4096 round$r
	wr 1 $((3 * r)) 10 7 4096 round$r
	[ $r -gt 0 ] && wr 0 0 1 1 4096 rewrite$r
	checkpoint round$r
	sleep 1
done
msg "set_transaction_id 1 2"
final_status
teardown
