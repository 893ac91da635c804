#!/bin/sh
# The data device grown twice while in use, past one space-map bitmap
# block (a bitmap covers 16320 data blocks). 64 KiB pool blocks, no block
# zeroing. The pool starts with 8192 data blocks (512 MiB of the 2560 MiB
# disk); thin 0 (4 GiB) gets blocks 0-7999. Grown to 24576 blocks: thin 0
# gets 8000-16999. Grown to 40960 blocks: thin 0 gets 17000-18999 and a new
# thin 1 blocks 0-299. Transaction id 1. The metadata device is not resized.
# @meta_mib 4
# @data_mib 2560
# @timeout 1200
pool_create 128 64 1048576 skip_block_zeroing
thin_new 0 8388608
wr 0 0 8000 1 4096 grow0
checkpoint size1
dmsetup suspend thin0
dmsetup suspend pool
pool_reload 3145728 skip_block_zeroing
dmsetup resume pool
dmsetup resume thin0
checkpoint size2
wr 0 8000 9000 1 4096 grow1
dmsetup suspend thin0
dmsetup suspend pool
pool_reload 5242880 skip_block_zeroing
dmsetup resume pool
dmsetup resume thin0
checkpoint size3
wr 0 17000 2000 1 4096 grow2
thin_new 1 131072
wr 1 0 300 1 4096 dev1
msg "set_transaction_id 0 1"
final_status
teardown
