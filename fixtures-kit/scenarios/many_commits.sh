#!/bin/sh
# Many commits between the last two recorded states. 64 KiB pool blocks.
# thin 0 (64 MiB) blocks 0-99 and thin 1 (64 MiB) blocks 0-49, then
# transaction id 1. Then 40 single-block writes, each followed by an fsync
# (a flush, so each is its own commit): thin 0 block 100+k for k = 1..40,
# and every tenth also thin 1 block 50+k. Transaction id 2 at the end.
# @meta_mib 4
# @data_mib 256
pool_create 128 64
thin_new 0 131072
wr 0 0 100 1 4096 base0
thin_new 1 131072
wr 1 0 50 1 4096 base1
msg "set_transaction_id 0 1"
checkpoint state1
k=1
while [ $k -le 40 ]; do
	wr 0 $((100 + k)) 1 1 4096 c$k
	[ $((k % 10)) -ne 0 ] || wr 1 $((50 + k)) 1 1 4096 c$k
	k=$((k + 1))
done
msg "set_transaction_id 1 2"
checkpoint state2
final_status
teardown
