#!/bin/sh
# Delete a device, then create one with the same id. 64 KiB pool blocks,
# no snapshots (the pool time stays 0, so no time stamp orders the states).
# thin 0 (64 MiB) blocks 0-23; thin 1 (64 MiB) blocks 0-39; transaction id
# 1. Then thin 1 is deleted and created again (details transaction id 1 now,
# 0 before), and the new thin 1 gets blocks 0-15 (other data blocks, fewer
# mappings at the same virtual blocks); thin 0 gets blocks 24-27.
# Transaction id 2.
# @meta_mib 4
# @data_mib 256
pool_create 128 64
thin_new 0 131072
wr 0 0 24 1 4096 dev0
thin_new 1 131072
wr 1 0 40 1 4096 dev1-old
msg "set_transaction_id 0 1"
checkpoint before-delete
thin_deact 1
msg "delete 1"
thin_new 1 131072
wr 1 0 16 1 4096 dev1-new
wr 0 24 4 1 4096 dev0-more
msg "set_transaction_id 1 2"
checkpoint after-recreate
final_status
teardown
