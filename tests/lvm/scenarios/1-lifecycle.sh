#!/bin/sh
# Lifecycle: a thin pool with 64 KiB chunks, two thins and a snapshot of each, data written; deactivated and activated several times (thin_check by LVM at each activation); data verified.
# @disk_mib 512
# @timeout 1800
setup_vg 1.1

step 1.2 "lvcreate a thin pool (64 KiB chunks): new pool, no thin_check"
mkpool pool 256M 4M
lvm_ran_not thin_check
endstep

step 1.3 "lvcreate two thin LVs"
mkthin pool thin1 64M
mkthin pool thin2 64M
check_note
endstep

step 1.4 "write patterns to both thins"
wr_step thin1 0 400 1 t1a
wr_step thin2 0 140 7 t2a
verify_all thin1 thin2
endstep

step 1.5 "snapshot each thin (lvcreate -s), then write to origins and snapshots"
mksnap thin1 snap1
mksnap thin2 snap2
wr_step thin1 10 60 3 t1b
wr_step snap1 600 50 1 s1a
wr_step thin2 3 100 7 t2b
wr_step snap2 0 20 7 s2a
verify_all thin1 thin2 snap1 snap2
endstep

i=1
for how in vg vg pool vg; do
	if [ $how = vg ]; then
		step 1.$((4 + 2 * i)) "cycle $i: vgchange -an $VG"
		run vgchange -an $VG; ok
	else
		step 1.$((4 + 2 * i)) "cycle $i: lvchange -an the thins, then lvchange -an $VG/pool: thin_check at deactivation"
		run lvchange -an $VG/thin1 $VG/thin2 $VG/snap1 $VG/snap2; ok
		run lvchange -an $VG/pool; ok
		lvm_ran thin_check 0 && check_argv pool
	fi
	expect_deactivated pool
	check_note
	endstep
	step 1.$((5 + 2 * i)) "cycle $i: vgchange -ay $VG: thin_check by LVM passes"
	run vgchange -ay $VG; ok
	out_has "5 logical volume(s) in volume group \"$VG\" now active"
	lvm_ran thin_check 0 && check_argv pool
	for lv in thin1 thin2 snap1 snap2; do lv_active $lv || fail "$lv not active"; done
	endstep
	i=$((i + 1))
done

step 1.14 "all data verifies after the cycles"
verify_all thin1 thin2 snap1 snap2
endstep

step 1.15 "lvs reports the pool healthy"
run lvs -a -o lv_name,lv_attr,lv_size,data_percent,metadata_percent,chunk_size,transaction_id $VG; ok
lvs --noheadings -o lv_attr $VG/pool | grep -q '^ *twi-aotz--' || fail "pool attr: $(lvs --noheadings -o lv_attr $VG/pool)"
endstep
