#!/bin/sh
# A deep delete, then writes: a device whose mapping tree has three levels
# is deleted and the freed metadata blocks are reused. 64 KiB pool blocks,
# no block zeroing, 6 GiB data (98304 blocks). Writes are 4 KiB per pool
# block, in runs of consecutive blocks with the runs in a scattered order.
# thin 0 (4 GiB) 750 runs of 16 blocks; thin 1 (8 GiB) 7000 runs of 8 of
# its 16384 (56000 blocks, a 3-level tree: about 260 leaves); transaction
# id 1. Then thin 1 is deleted, a new thin 2 (4 GiB) gets 375 runs of 16
# and thin 0 125 more (some land on mapped blocks). Transaction id 2. The
# metadata device is 2 MiB (512 blocks; about 335 in use before the delete)
# so that the image keeps fewer stale nodes.
# @meta_mib 2
# @data_mib 6144
# @timeout 2400
pool_create 128 1024 "" skip_block_zeroing
thin_new 0 8388608
wrruns 0 4096 750 1 16 dev0
thin_new 1 16777216
wrruns 1 16384 7000 2 8 dev1
msg "set_transaction_id 0 1"
checkpoint before-delete
thin_deact 1
msg "delete 1"
checkpoint after-delete
thin_new 2 8388608
wrruns 2 4096 375 3 16 dev2
wrruns 0 4096 125 4 16 dev0-more
msg "set_transaction_id 1 2"
checkpoint after-writes
final_status
teardown
