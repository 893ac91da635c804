#!/bin/sh
# A crash in the middle of a commit, made exact: one transaction's btree
# and space-map blocks are all on the disk, its superblock is not.
# The metadata device is a dm table over the 4 MiB disk. thin 0 (64 MiB)
# blocks 0-63, thin 1 blocks 0-31, thin 2 blocks 0-15, snap 3 of thin 0,
# transaction id 4. After 1.5 s idle, one new block (90) for thin 0 and
# an fsync make the kernel commit (state A, the last whole commit; it also
# restarts the kernel's 1 s commit timer). Then the metadata device's
# preloaded second table is switched in (dmsetup resume) so that
# superblock writes (sectors 0-7) are silently dropped (dm-flakey
# drop_writes). Within the same second, so that no timed commit comes
# between: thin 0 gets new blocks 64-71 and rewrites 10-13 (breaking
# sharing with snap 3), thin 1 blocks 40-43, all O_DIRECT without a flush,
# and "delete 2" commits them: state B, written in full except its
# superblock. The scenario fails if that took 0.95 s or more after the
# write that committed A. Then all metadata writes are dropped and the pool
# is torn down. The superblock shows state A; state B's trees lie in blocks
# that A counts as free (the kernel allocates metadata blocks next-fit, so
# B overwrote none of A's).
# @meta_mib 4
# @data_mib 256
dmsetup create meta --table "0 8192 linear /dev/vda 0"
META=/dev/mapper/meta
pool_create 128 64
thin_new 0 131072
wr 0 0 64 1 4096 base0
thin_new 1 131072
wr 1 0 32 1 4096 base1
thin_new 2 131072
wr 2 0 16 1 4096 base2
thin_deact 2
snap_new 3 0 131072
msg "set_transaction_id 0 4"
printf '0 8 flakey /dev/vda 0 0 3600 1 drop_writes\n8 8184 linear /dev/vda 8\n' | dmsetup reload meta
sleep 1.5
t0=$(uptime_ms)
wr 0 90 1 1 4096 a-last
dmsetup resume meta
WRFLAGS=direct,nosync wr 0 64 8 1 4096 b-new
WRFLAGS=direct,nosync wr 0 10 4 1 4096 b-cow
WRFLAGS=direct,nosync wr 1 40 4 1 4096 b-new1
msg "delete 2"
t1=$(uptime_ms)
echo "state B committed $((t1 - t0)) ms after the write that committed state A"
[ $((t1 - t0)) -lt 950 ]
checkpoint state-b
echo '0 8192 flakey /dev/vda 0 0 3600 1 drop_writes' | dmsetup reload meta
dmsetup resume meta
final_status
teardown
