#!/bin/sh
# A metadata snapshot reserved, written around, then released, so the
# blocks only it held are freed and reused. 64 KiB pool blocks.
# thin 0 (64 MiB) blocks 0-199; transaction id 1; reserve_metadata_snap;
# thin 0 gets new blocks 200-299 and a new thin 1 blocks 0-49; release_metadata_snap; then thin 0 gets 100 scattered writes over
# 1024 blocks and thin 1 blocks 50-79. Transaction id 2, no held root.
# @meta_mib 4
# @data_mib 256
pool_create 128 64
thin_new 0 131072
wr 0 0 200 1 4096 base
msg "set_transaction_id 0 1"
msg "reserve_metadata_snap"
checkpoint held
wr 0 200 100 1 4096 held0
thin_new 1 131072
wr 1 0 50 1 4096 held1
msg "release_metadata_snap"
checkpoint released
wrr 0 1024 100 5 after0
wr 1 50 30 1 4096 after1
msg "set_transaction_id 1 2"
final_status
teardown
