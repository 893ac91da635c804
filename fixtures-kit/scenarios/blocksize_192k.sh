#!/bin/sh
# 192 KiB pool blocks (384 sectors, not a power of two). 256 MiB data =
# 1365 blocks. thin 0 (96 MiB = 512 blocks) blocks 0-299 by 4 KiB writes;
# snap 1 of thin 0 rewrites 0, 3, ... 57; thin 0 then rewrites 100-119;
# thin 2 (48 MiB) gets blocks 0-49 and is deleted; thin 3 gets 10 blocks
# at stride 5. Transaction id 3.
# @meta_mib 4
# @data_mib 256
# @delta 0:1
pool_create 384 16
thin_new 0 196608
wr 0 0 300 1 4096 origin
snap_new 1 0 196608
wr 1 0 20 3 4096 snap1
wr 0 100 20 1 4096 origin2
thin_new 2 98304
wr 2 0 50 1 4096 dev2
thin_deact 2
msg "delete 2"
thin_new 3 98304
wr 3 0 10 5 4096 dev3
msg "set_transaction_id 0 3"
final_status
teardown
