#!/bin/sh
# Deactivation: LVM 2.03.16 runs thin_check on deactivation only when the pool LV itself is deactivated; each order of deactivation is run and whether LVM ran thin_check is recorded (the note of each step), and the pool-last order must run it.
# @disk_mib 512
# @timeout 1800
setup_vg 7.1

step 7.2 "pool (64 KiB chunks) with thins thin1, thin2 and snapshot snap1, data written"
mkpool pool 128M 4M
mkthin pool thin1 64M
mkthin pool thin2 64M
wr_step thin1 0 200 1 t1a
wr_step thin2 0 100 5 t2a
mksnap thin1 snap1
wr_step thin1 0 50 2 t1b
endstep

THINS="$VG/thin1 $VG/thin2 $VG/snap1"

step 7.3 "order A: lvchange -an the thin LVs (the pool LV stays active)"
run lvchange -an $THINS; ok
check_note
pool_active pool || fail "the pool was deactivated with its thins"
endstep

step 7.4 "order A: then lvchange -an $VG/pool: LVM runs thin_check"
run lvchange -an $VG/pool; ok
lvm_ran thin_check 0 && check_argv pool
expect_deactivated pool
check_note
endstep

step 7.5 "activation of the thin LVs only (lvchange -ay thins): LVM runs thin_check"
run lvchange -ay $THINS; ok
lvm_ran thin_check 0 && check_argv pool
check_note
endstep

step 7.6 "order B: lvchange -an the thin LVs when they alone were activated: the pool goes with the last thin"
run lvchange -an $THINS; ok
expect_deactivated pool
check_note
endstep

step 7.7 "order C: one command, thins and pool: lvchange -an thins $VG/pool"
run vgchange -ay $VG; ok
lvm_ran thin_check 0
run lvchange -an $THINS $VG/pool; ok
check_note run
expect_deactivated pool
endstep

step 7.8 "order D: the pool first, one command: lvchange -an $VG/pool thins"
run vgchange -ay $VG; ok
lvm_ran thin_check 0
run lvchange -an $VG/pool $THINS; ok
check_note run
expect_deactivated pool
endstep

step 7.9 "order E: lvchange -an $VG (every LV of the VG)"
run vgchange -ay $VG; ok
run lvchange -an $VG; ok
check_note run
expect_deactivated pool
endstep

step 7.10 "order F: vgchange -an $VG"
run vgchange -ay $VG; ok
run vgchange -an $VG; ok
check_note run
expect_deactivated pool
endstep

step 7.11 "order G: lvchange -an $VG/pool while its thins are active"
run vgchange -ay $VG; ok
run lvchange -an $VG/pool
note "exit $RC"
check_note run
for lv in thin1 thin2 snap1; do lv_active $lv && note "$lv still active"; done
pool_active pool && note "pool still active"
endstep

step 7.12 "all data verifies"
run vgchange -ay $VG; ok
verify_all thin1 thin2 snap1
endstep
