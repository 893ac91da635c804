#!/bin/sh
# A metadata snapshot held while the pool keeps changing, left held.
# 64 KiB pool blocks. thin 0 (64 MiB) blocks 0-299; thin 1 (64 MiB) 100
# blocks at stride 2; snap 2 of thin 0; transaction id 1; then
# reserve_metadata_snap. While it is held: thin 0 gets 200 scattered
# writes, snap 2 rewrites 50-69, thin 1 is deleted, blkdiscard unmaps thin 0
# blocks 500-599, and a new thin 3 gets blocks 0-39. Transaction id 2. The
# superblock's held_root keeps the transaction-1 trees (thin_dump -m).
# @meta_mib 4
# @data_mib 256
pool_create 128 64
thin_new 0 131072
wr 0 0 300 1 4096 base
thin_new 1 131072
wr 1 0 100 2 4096 dev1
snap_new 2 0 131072
msg "set_transaction_id 0 1"
msg "reserve_metadata_snap"
checkpoint held
wrr 0 1024 200 3 held0
wr 2 50 20 1 4096 held2
thin_deact 1
msg "delete 1"
blkdiscard -o $((500 * 65536)) -l $((100 * 65536)) /dev/mapper/thin0
thin_new 3 131072
wr 3 0 40 1 4096 dev3
msg "set_transaction_id 1 2"
checkpoint after-hold
final_status
teardown
