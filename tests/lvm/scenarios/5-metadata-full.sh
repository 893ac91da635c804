#!/bin/sh
# Metadata full: a pool with a 2 MiB metadata LV is filled by snapshots and scattered writes until the pool fails; then LVM's recipe (deactivate, lvconvert --repair, lvextend --poolmetadatasize), the pool works again and the data written (and flushed) before the failure verifies.
# @disk_mib 1024
# @timeout 3600
setup_vg 5.1 -s 1M

step 5.2 "pool: 1 GiB data, 2 MiB metadata, 64 KiB chunks, no zeroing; thin LV origin (512 MiB) fully written (8192 chunks)"
mkpool pool 1G 2M -Zn
[ "$(lvs -a --noheadings --units m -o lv_size $VG/pool_tmeta | tr -d ' ')" = 2.00m ] || fail "pool_tmeta is not 2 MiB"
mkthin pool origin 512M
wr_step origin 0 8192 1 base
run lvs -o lv_name,data_percent,metadata_percent $VG/pool
endstep

# LVM refuses new thin LVs once the metadata is 75% used, so the snapshots
# are taken first (each costs about one block); then each round writes one
# chunk every 64 into one snapshot, which copies every leaf of the mapping
# tree it shares with origin.  A round counts only when its writes and
# their flush succeeded.
NS=14
step 5.3 "$NS snapshots of origin, then scattered writes into them until the pool fails (metadata full)"
r=0
while [ $r -lt $NS ]; do
	r=$((r + 1))
	run lvcreate -s -kn $VG/origin -n s$r || { fail "lvcreate s$r failed: $(firstline)"; break; }
	snapmf origin s$r
done
run lvs -o lv_name,data_percent,metadata_percent $VG/pool
r=0
FULL=
while [ $r -lt $NS ]; do
	r=$((r + 1))
	lv_active s$r || break
	if ! wrl s$r $((r % 64)) 128 64 r$r; then
		# some of these writes may have been committed: s$r is not verified
		rm -f "$MF/s$r"
		FULL="writes to s$r failed"
		break
	fi
	say "    round $r: metadata $(lvs --noheadings -o metadata_percent $VG/pool | tr -d ' ')%"
done
LAST=$NS
[ -n "$FULL" ] || fail "the pool did not fail after $r rounds"
note "$FULL (round $r)"
run dmsetup status $VG-pool-tpool
run lvs -o lv_name,lv_attr,lv_health_status,data_percent,metadata_percent $VG/pool
run sh -c "dmesg | grep -E 'device-mapper: (thin|space map|block manager|btree|transaction)' | tail -6"
endstep

step 5.4 "deactivate the thins and the pool"
LVS="origin"
i=1
while [ $i -le $LAST ]; do
	lv_active s$i && LVS="$LVS s$i"
	i=$((i + 1))
done
run lvchange -an $(for l in $LVS; do echo $VG/$l; done)
run lvchange -an $VG/pool
check_note
expect_deactivated pool
endstep

step 5.5 "lvconvert --repair $VG/pool: LVM runs our thin_repair into the 2 MiB spare, then our thin_dump"
need 5.4
run lvconvert --repair $VG/pool; ok
lvm_ran thin_repair 0
lvm_ran thin_dump
out_lacks "does not match repaired transaction id"
# blocks in use in the metadata before the repair (now pool_meta0, or
# still pool_tmeta when the repair failed)
l=pool_meta0
lvs $VG/$l > /dev/null 2>&1 || l=pool_tmeta
if run lvchange -ay -y $VG/$l && dd if=/dev/mapper/$VG-$l of=/tmp/m.bin bs=1M 2> /dev/null; then
	note "metadata before the repair: $(thin_damage --info /tmp/m.bin | grep -E '^metadata_(nr_allocated|nr_blocks)=' | tr '\n' ' ')"
fi
rm -f /tmp/m.bin
run lvchange -an $VG/$l
endstep

step 5.6 "lvextend --poolmetadatasize +6M $VG/pool (the metadata LV and its spare to 8 MiB)"
need 5.4
run lvextend --poolmetadatasize +6M $VG/pool; ok
[ "$(lvs -a --noheadings --units m -o lv_size $VG/pool_tmeta | tr -d ' ')" = 8.00m ] || fail "pool_tmeta is not 8 MiB"
check_note
run lvs -a -o lv_name,lv_attr,lv_size $VG/pool_tmeta $VG/lvol0_pmspare
endstep

step 5.6r "lvconvert --repair after the extension (only when the repair into the 2 MiB spare failed)"
if passed 5.5; then
	note "not needed: step 5.5 passed"
else
	need 5.6
	run lvchange -an $VG/pool
	expect_deactivated pool
	run lvconvert --repair $VG/pool; ok
	lvm_ran thin_repair 0
	lvm_ran thin_dump
	out_lacks "does not match repaired transaction id"
fi
endstep

step 5.7 "vgchange -ay: LVM's thin_check passes, the pool is read-write"
passed 5.5 || need 5.6r
run vgchange -ay $VG; ok
lvm_ran thin_check 0
run dmsetup status $VG-pool-tpool
out_has " rw "
run lvs -o lv_name,lv_attr,data_percent,metadata_percent $VG/pool
endstep

step 5.8 "the pool works: writes to origin (new blocks: its chunks are shared with the snapshots) and a new snapshot"
need 5.7
wr_step origin 5 100 80 after
mksnap origin snew
wr_step snew 0 64 128 snew
endstep

step 5.9 "the data written and flushed before the failure verifies (origin and every snapshot)"
need 5.7
# origin, the new snapshot, every snapshot written in a committed round,
# and the last snapshot (never written: it shares everything with origin)
i=1
V="origin snew"
while [ $i -lt $LAST ]; do
	[ -f "$MF/s$i" ] && [ -n "$(awk '$5 ~ /^r/' "$MF/s$i")" ] && V="$V s$i"
	i=$((i + 1))
done
[ -f "$MF/s$LAST" ] && V="$V s$LAST"
note "verified: $V"
verify_all $V
endstep
