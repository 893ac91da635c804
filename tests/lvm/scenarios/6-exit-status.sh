#!/bin/sh
# Exit-status contract: LVM reads thin_check's exit status 2 as "binary missing" (it then skips the check and activates). Our thin_check failing at activation on damaged metadata exits 1: LVM refuses the activation and does not take it for a missing binary; failing at deactivation LVM only warns. Exit 2 is left to usage errors, shown with a bogus option in thin_check_options.
# @disk_mib 512
# @timeout 1800
setup_vg 6.1

step 6.2 "pools bad and ok (64 KiB chunks), a thin LV with data in each, deactivated (pool last)"
for p in bad ok; do
	mkpool $p 64M 4M
	mkthin $p ${p}1 64M
	wr_step ${p}1 0 300 1 ${p}1a
	run lvchange -an $VG/${p}1; ok
	run lvchange -an $VG/$p; ok
	lvm_ran thin_check 0
done
endstep

step 6.3 "damage pool bad's metadata: the top-level mapping tree's root block zeroed"
meta_get bad || fail "cannot read bad's metadata LV"
B=$(thin_damage --info /tmp/bad.meta | sed -n 's/^data_mapping_root=//p')
[ -n "$B" ] && thin_damage --zero-block "$B" /tmp/bad.meta || fail "damage failed"
meta_put bad || fail "cannot write bad's metadata LV"
note "block $B zeroed"
endstep

step 6.4 "activation: our thin_check exits 1; LVM refuses (\"Check of pool ... failed (status:1)\"), no \"missing binary\" warning"
run lvchange -ay $VG/bad1
nok
lvm_ran thin_check 1
out_has "Check of pool $VG/bad failed (status:1). Manual repair required!"
out_lacks "missing binary"
out_lacks "Check is skipped"
! pool_active bad || fail "pool bad is active"
! lv_active bad1 || fail "bad1 is active"
endstep

step 6.5 "deactivation of an active pool whose metadata fails the check: our thin_check exits 1, LVM warns, the pool is deactivated"
run lvchange -ay $VG/ok1; ok
lvm_ran thin_check 0
run lvchange -ay $VG/ok; ok
# damage on disk under the live pool, in a block the kernel does not rewrite
# when it commits at deactivation: a leaf of ok1's mapping tree
if meta_get_live ok; then
	ID=$(thin_id ok1)
	B=$(thin_damage --leaf-of "$ID" /tmp/ok.meta)
	thin_damage --zero-block "$B" /tmp/ok.meta
	dd if=/tmp/ok.meta of=/dev/mapper/dmgok bs=4096 skip="$B" seek="$B" count=1 conv=notrunc,fsync 2>> $T
	dmsetup remove dmgok
	echo 3 > /proc/sys/vm/drop_caches
	note "leaf block $B of ok1 zeroed under the live pool"
else
	fail "cannot map ok's metadata"
fi
run lvchange -an $VG/ok1; ok
run lvchange -an $VG/ok
lvm_ran thin_check 1
expect_deactivated ok
out_lacks "missing binary"
note "lvchange exit $RC"
endstep

step 6.6 "usage error: thin_check_options with an unknown option: thin_check exits 2 and LVM, reading 2 as \"missing binary\", skips the check"
ALLOW_SKIP=1
run lvchange -ay --config 'global { thin_check_options = [ "-q", "--no-such-option" ] }' $VG/bad1
ALLOW_SKIP=0
lvm_ran thin_check 2
out_has "Check is skipped, please install recommended missing binary"
pool_active bad && note "the damaged pool was activated unchecked" || note "pool not activated"
endstep
