#!/bin/sh
# Discards (blkdiscard on thin devices) of whole ranges, then more writes.
# 64 KiB pool blocks. thin 0 (128 MiB): 1500 scattered 4 KiB writes over its
# 2048 blocks; thin 1 (128 MiB): blocks 0-399 in full; snap 2 of thin 1
# rewrites 50 blocks (100, 103, ... 247). Transaction id 1. Then blkdiscard
# unmaps thin 0 blocks 256-767 and 1024-1279, thin 1 (the origin) blocks
# 0-199 (the snapshot keeps its mappings) and snap 2 blocks 300-349. After
# that thin 0 gets 300 scattered writes, thin 1 blocks 50-149 again, and a
# new thin 3 blocks 0-199. Transaction id 2.
# @meta_mib 4
# @data_mib 512
pool_create 128 64
thin_new 0 262144
wrr 0 2048 1500 1
thin_new 1 262144
wr 1 0 400 1 65536 dev1
snap_new 2 1 262144
wr 2 100 50 3 4096 snap2
msg "set_transaction_id 0 1"
checkpoint before-discards
B=65536
blkdiscard -o $((256 * B)) -l $((512 * B)) /dev/mapper/thin0
blkdiscard -o $((1024 * B)) -l $((256 * B)) /dev/mapper/thin0
blkdiscard -o 0 -l $((200 * B)) /dev/mapper/thin1
blkdiscard -o $((300 * B)) -l $((50 * B)) /dev/mapper/thin2
sync
checkpoint after-discards
wrr 0 2048 300 7 again
wr 1 50 100 1 4096 dev1-again
thin_new 3 262144
wr 3 0 200 1 4096 dev3
msg "set_transaction_id 1 2"
checkpoint after-writes
final_status
teardown
