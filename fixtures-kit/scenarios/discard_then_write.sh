#!/bin/sh
# Discard a range, then write it again. 64 KiB pool blocks, no snapshots.
# thin 0 (64 MiB) blocks 0-63 written in full; thin 1 (64 MiB) blocks 0-15;
# transaction id 1. Then blkdiscard unmaps blocks 16-47 of thin 0, and the
# same blocks are written again (4 KiB each, so they map to other data
# blocks). The transaction id stays 1.
# @meta_mib 4
# @data_mib 256
pool_create 128 64
thin_new 0 131072
wr 0 0 64 1 65536 first
thin_new 1 131072
wr 1 0 16 1 4096 dev1
msg "set_transaction_id 0 1"
checkpoint before-discard
blkdiscard -o $((16 * 65536)) -l $((32 * 65536)) /dev/mapper/thin0
sync
checkpoint after-discard
wr 0 16 32 1 4096 second
checkpoint after-rewrite
final_status
teardown
