#!/bin/sh
# Crash during random writes: QEMU is SIGKILLed while an origin and its
# snapshot take endless random 4 KiB writes. 64 KiB pool blocks.
# thin 0 (64 MiB = 1024 blocks) blocks 0-255 in full; snap 1 of thin 0
# rewrites 32 blocks (0, 4, ... 124); transaction id 1. Then the crash is
# armed and both devices get random buffered writes over all 1024 blocks,
# with an fdatasync every 512 writes (each one a commit, besides the
# kernel's own commit every second), until the kill 5 s later. The image
# holds the last committed transaction, older ones not yet overwritten, and
# whatever the kernel had written of the next one.
# @meta_mib 4
# @data_mib 256
# @crash_after 5
pool_create 128 64
thin_new 0 131072
wr 0 0 256 1 65536 base
snap_new 1 0 131072
wr 1 0 32 4 4096 snap
msg "set_transaction_id 0 1"
crash_arm
wrc 0 1024 512 11 crash0 &
wrc 1 1024 512 23 crash1 &
wait
