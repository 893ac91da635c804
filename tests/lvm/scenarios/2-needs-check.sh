#!/bin/sh
# needs_check: metadata write errors (a dm-flakey layer with error_writes under the metadata LV's PV, superblock left writable, as the fixtures kit's needs_check scenario) make the kernel set NEEDS_CHECK; the next activation's thin_check (--clear-needs-check-flag) clears it and the pool works.
# @disk_mib 512
# @timeout 1800

# /dev/vda is used through a dm device (pv1) whose table can switch parts
# of it to dm-flakey; LVM must see pv1, not /dev/vda underneath it
PVSZ=$(blockdev --getsz /dev/vda)
dmsetup create pv1 --table "0 $PVSZ linear /dev/vda 0"
sed -i 's#"a|^/dev/vd\[ab\]\$|"#"a|^/dev/mapper/pv1$|", "a|^/dev/vdb$|"#' /etc/lvm/lvm.conf
grep -q 'mapper/pv1' /etc/lvm/lvm.conf || echo "lvm.conf filter not changed" >> $T

step 2.1 "PVs /dev/mapper/pv1 (over /dev/vda) and /dev/vdb; pool with its metadata on pv1 and data on vdb"
run pvcreate /dev/mapper/pv1 /dev/vdb; ok
run vgcreate $VG /dev/mapper/pv1 /dev/vdb; ok
run lvcreate -L 128M -n pool $VG /dev/vdb; ok
run lvcreate -L 4M -n poolmeta $VG /dev/mapper/pv1; ok
run lvconvert -y --type thin-pool --chunksize 64k --poolmetadata $VG/poolmeta $VG/pool; ok
mkthin pool thin1 64M
endstep

step 2.2 "write data, committed"
wr_step thin1 0 200 1 base
verify_all thin1
endstep

# the metadata LV's place on pv1: "0 8192 linear 253:0 START"
TM=$(dmsetup table $VG-pool_tmeta)
MSTART=$(echo "$TM" | awk '{print $5}')
MLEN=$(echo "$TM" | awk '{print $2}')
say "    pool_tmeta table: $TM"

step 2.3 "metadata writes fail (dm-flakey error_writes over the metadata LV but its superblock): the kernel sets needs_check"
if [ -z "$MSTART" ] || [ "$(echo "$TM" | awk '{print $3}')" != linear ]; then
	fail "pool_tmeta is not one linear segment: $TM"
else
	A=$((MSTART + 8))
	B=$((MSTART + MLEN))
	printf '0 %s linear /dev/vda 0\n%s %s flakey /dev/vda %s 0 3600 1 error_writes\n%s %s linear /dev/vda %s\n' \
		$A $A $((B - A)) $A $B $((PVSZ - B)) $B > /tmp/flaky.tbl
	sed 's/^/    /' /tmp/flaky.tbl >> $T
	run dmsetup suspend pv1; ok
	run dmsetup reload pv1 /tmp/flaky.tbl; ok
	run dmsetup resume pv1; ok
	wrl thin1 500 16 1 lost && fail "writes to new blocks were committed despite the metadata write errors"
	sleep 2
	run dmsetup status $VG-pool-tpool
	out_has needs_check
	run lvs -o lv_name,lv_attr,lv_health_status,lv_check_needed $VG/pool
	run sh -c "dmesg | grep -E 'device-mapper: (thin|space map|block manager|btree)' | tail -8"
fi
endstep

step 2.4 "restore the writes (pv1 linear again); deactivate (vgchange -an)"
run dmsetup suspend pv1; ok
run dmsetup reload pv1 --table "0 $PVSZ linear /dev/vda 0"; ok
run dmsetup resume pv1; ok
run vgchange -an $VG; ok
expect_deactivated pool
check_note
endstep

step 2.5 "on disk, the superblock has needs_check set (flags=1, read through LVM's component activation)"
run lvchange -ay -y $VG/pool_tmeta; ok
F=$(sb_flags /dev/mapper/$VG-pool_tmeta)
say "    superblock flags: $F"
[ "$F" = 1 ] || fail "superblock flags are '$F'"
run lvchange -an $VG/pool_tmeta; ok
endstep

step 2.6 "vgchange -ay: LVM's thin_check clears needs_check, the pool activates read-write"
need 2.3
run vgchange -ay $VG; ok
lvm_ran thin_check 0 && check_argv pool
run dmsetup status $VG-pool-tpool
out_lacks needs_check
out_has " rw "
endstep

step 2.7 "the pool works: new writes and a snapshot; the data committed before the fault verifies"
wr_step thin1 300 50 2 after
mksnap thin1 snap1
wr_step snap1 0 10 1 snapw
verify_all thin1 snap1
endstep

step 2.8 "after a deactivation (pool last), the superblock's needs_check is clear on disk (flags=0)"
run lvchange -an $VG/thin1 $VG/snap1; ok
run lvchange -an $VG/pool; ok
lvm_ran thin_check 0
run lvchange -ay -y $VG/pool_tmeta; ok
F=$(sb_flags /dev/mapper/$VG-pool_tmeta)
say "    superblock flags: $F"
[ "$F" = 0 ] || fail "superblock flags are '$F'"
run lvchange -an $VG/pool_tmeta; ok
endstep
