#!/bin/sh
# A 512 KiB metadata device (128 blocks) filled with snapshots and
# scattered writes until the kernel stops allocating (it keeps a reserve
# of a tenth of the device and then refuses writes that need metadata).
# 64 KiB pool blocks, 2 GiB data. Writes are 4 KiB per pool block, in runs
# of 16 consecutive blocks with the runs in a scattered order. thin 0
# (2 GiB): rounds s = 1..12 of 160 runs (a different set each round,
# mostly new blocks, but spread over the whole device, so the origin copies
# nearly every leaf it shares with the snapshots), each followed by snap s
# of thin 0 and 8 runs written to snap s; it stops at the first failed
# write.
# No transaction id is set. The pool may end in read-only or fail mode; the
# metadata is kept as it is.
# @meta_size 512K
# @data_mib 2048
# @timeout 1200
set +e
pool_create 128 64
thin_new 0 4194304
s=1
while [ $s -le 12 ]; do
	wrruns 0 2048 160 $s 16 round$s || { echo "round $s: write failed"; break; }
	snap_new $s 0 4194304 || { echo "round $s: snapshot failed"; break; }
	wrruns $s 2048 8 $((s + 100)) 16 snap$s || { echo "round $s: snapshot write failed"; break; }
	checkpoint round$s
	s=$((s + 1))
done
sleep 2
dmesg | grep -E 'thin|metadata' | tail -20
checkpoint full
final_status
teardown
true
