#!/bin/sh
# Migration: thin_dump the pool's metadata (with -m on the live pool holding a reserved metadata snapshot, and offline through LVM's component activation), thin_restore it into a new LV, lvconvert --swapmetadata, activate (LVM's thin_check of the restored metadata), verify the data; the pool keeps working.
# @disk_mib 512
# @timeout 1800
setup_vg 4.1

step 4.2 "pool (64 KiB chunks), thins thin1 and thin2, snapshot snap1 of thin1, data written"
mkpool pool 192M 4M
mkthin pool thin1 64M
mkthin pool thin2 64M
wr_step thin1 0 500 1 t1a
wr_step thin2 0 200 3 t2a
mksnap thin1 snap1
wr_step thin1 50 100 2 t1b
wr_step snap1 700 30 3 s1a
verify_all thin1 thin2 snap1
endstep

step 4.3 "live: reserve_metadata_snap, thin_dump -m of the active pool's _tmeta, release_metadata_snap"
run dmsetup message $VG-pool-tpool 0 reserve_metadata_snap; ok
run dmsetup status $VG-pool-tpool; ok
HELD=$(awk '{print $7}' /tmp/run.out)
case "$HELD" in
[0-9]*) note "held metadata root $HELD" ;;
*) fail "no held metadata root in the status: $HELD" ;;
esac
run sh -c "thin_dump -m /dev/mapper/$VG-pool_tmeta > /tmp/live.xml"; ok
[ "$(called thin_dump)" = 1 ] || fail "our wrapper did not run thin_dump"
head -1 /tmp/live.xml | grep -q '^<superblock ' || fail "no superblock line in the dump"
grep -c '<device ' /tmp/live.xml | grep -qx 3 || fail "the live dump does not hold 3 devices"
say "    $(head -1 /tmp/live.xml)"
run dmsetup message $VG-pool-tpool 0 release_metadata_snap; ok
endstep

step 4.4 "offline: deactivate (pool last), activate the _tmeta component, thin_dump; equal to the live dump"
run lvchange -an $VG/thin1 $VG/thin2 $VG/snap1; ok
run lvchange -an $VG/pool; ok
lvm_ran thin_check 0
run lvchange -ay -y $VG/pool_tmeta; ok
run sh -c "thin_dump /dev/mapper/$VG-pool_tmeta > /tmp/offline.xml"; ok
say "    $(head -1 /tmp/offline.xml)"
run lvchange -an $VG/pool_tmeta; ok
tail -n +2 /tmp/offline.xml > /tmp/offline.xml.tail
if cmp -s /tmp/live.xml /tmp/offline.xml; then
	note "identical"
elif tail -n +2 /tmp/live.xml | cmp -s - /tmp/offline.xml.tail; then
	note "devices and mappings identical, superblock lines differ"
else
	fail "the live and offline dumps differ: $(diff /tmp/live.xml /tmp/offline.xml | head -3 | tr '\n' ' ' | cut -c1-150)"
fi
endstep

step 4.5 "thin_restore of the -m dump as it is: refused, a metadata snapshot has nr_data_blocks=\"0\""
run lvcreate -L 8M -n newmeta $VG; ok
grep -q '^<superblock .* nr_data_blocks="0"' /tmp/live.xml || note "the -m dump has nr_data_blocks != 0"
run thin_restore -i /tmp/live.xml -o /dev/mapper/$VG-newmeta
nok
[ "$(called thin_restore)" = 1 ] || fail "our wrapper did not run thin_restore"
note "$(firstline)"
endstep

# the data size in pool blocks, from LVM: pool size / chunk size
NRDB=$(( $(lvs --noheadings --units s --nosuffix -o lv_size $VG/pool | tr -d ' ') / $(lvs --noheadings --units s --nosuffix -o chunk_size $VG/pool | tr -d ' ') ))
step 4.6 "thin_restore the live dump into the new LV with --nr-data-blocks $NRDB (the pool's size from lvs); it dumps equal to the offline dump"
run thin_restore -i /tmp/live.xml --nr-data-blocks $NRDB -o /dev/mapper/$VG-newmeta; ok
[ "$(called thin_restore)" = 1 ] || fail "our wrapper did not run thin_restore"
run sh -c "thin_dump /dev/mapper/$VG-newmeta > /tmp/restored.xml"; ok
cmp -s /tmp/restored.xml /tmp/offline.xml || fail "the restored metadata dumps differently: $(diff /tmp/restored.xml /tmp/offline.xml | head -3 | tr '\n' ' ' | cut -c1-150)"
run lvchange -an $VG/newmeta; ok
endstep

step 4.7 "lvconvert --swapmetadata --poolmetadata $VG/newmeta $VG/pool"
run lvconvert -y --swapmetadata --poolmetadata $VG/newmeta $VG/pool; ok
run lvs -a -o lv_name,lv_attr,lv_size,transaction_id $VG; ok
[ "$(lvs --noheadings --units m -o lv_size $VG/pool_tmeta | tr -d ' ')" = 8.00m ] || fail "pool_tmeta is not the 8 MiB new LV"
endstep

step 4.8 "vgchange -ay: LVM's thin_check passes on the restored metadata, transaction id accepted"
run vgchange -ay $VG; ok
lvm_ran thin_check 0 && check_argv pool
out_lacks "transaction_id is"
for lv in thin1 thin2 snap1; do lv_active $lv || fail "$lv not active"; done
endstep

step 4.9 "every thin LV's data verifies on the migrated metadata"
need 4.8
verify_all thin1 thin2 snap1
endstep

step 4.10 "the pool keeps working: a new snapshot and writes, deactivation and activation, data verifies"
need 4.8
mksnap thin2 snap2
wr_step snap2 5 40 5 s2a
wr_step thin1 900 20 1 t1c
run lvchange -an $VG/thin1 $VG/thin2 $VG/snap1 $VG/snap2; ok
run lvchange -an $VG/pool; ok
lvm_ran thin_check 0
run vgchange -ay $VG; ok
lvm_ran thin_check 0
verify_all thin1 thin2 snap1 snap2
endstep

step 4.11 "the old metadata, now LV $VG/newmeta, passes thin_check"
run lvchange -ay $VG/newmeta; ok
run thin_check /dev/mapper/$VG-newmeta; ok
[ "$(called thin_check)" = 1 ] || fail "our wrapper did not run thin_check"
endstep
