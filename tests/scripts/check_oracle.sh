#!/usr/bin/env bash
# Oracle: metadata written by the reference thin_restore (0.9.0) from
# gen_pool pools must check clean (exit 0; 0.9.0's hint inconsistencies
# are warnings) with ours, 0.9.0 and 1.1.0, and damage that 0.9.0's
# thin_check misses (data ref counts, mapped_blocks) must fail ours, as it
# fails 1.1.0.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1
CHK=$BIN/thin_check
DMG=$DEVBIN/thin_damage
GEN=$DEVBIN/gen_pool
REF_RESTORE=/usr/sbin/thin_restore
REF_CHECK=/usr/sbin/thin_check
[ -x "$REF_RESTORE" ] || die "reference thin_restore missing"

make_pool() {  # name gen-args... -> $WORK/name.bin
	local name=$1; shift
	"$GEN" --scale tiny "$@" -o "$WORK/$name.xml" >/dev/null 2>&1 || die "gen_pool $*"
	truncate -s 32M "$WORK/$name.bin"
	"$REF_RESTORE" -i "$WORK/$name.xml" -o "$WORK/$name.bin" || die "reference restore $*"
}

shapes=(
	"--seed 1 --origins 1 --snapshots 0 --mappings 3000"
	"--seed 2 --origins 3 --snapshots 2 --mappings 8000"
	"--seed 3 --origins 1 --snapshots 6 --mappings 20000"
	"--seed 4 --origins 4 --snapshots 5 --mappings 12000 --snap-of-snap-prob 0.5"
	"--seed 5 --origins 2 --snapshots 3 --mappings 20000 --discard-prob 0.3"
)
i=0
for s in "${shapes[@]}"; do
	i=$((i + 1))
	make_pool "p$i" $s
	note "pool p$i: $s"
	expect_rc 0 "$CHK" "$WORK/p$i.bin"
	assert_contains "$WORK/err" "checking space map counts"
	assert_not_contains "$WORK/err" "leaked"
	assert_not_contains "$WORK/err" "bad reference counts"
	expect_rc 0 "$REF_CHECK" "$WORK/p$i.bin"
	expect_rc 0 "$REF1/thin_check" "$WORK/p$i.bin"
done
# p3: one origin, six snapshots: multi-level trees and counts >= 3
OV=$("$DMG" --info "$WORK/p3.bin" | sed -n 's/^data_ref_count_root=//p')
[ "$("$DMG" --node-info "$OV" "$WORK/p3.bin" | sed -n 's/^nr_entries=//p')" -gt 0 ] ||
	die "p3 has no data ref counts >= 3"
R=$("$DMG" --dev-root 0 "$WORK/p3.bin")
[ "$("$DMG" --node-info "$R" "$WORK/p3.bin" | sed -n 's/^flags=//p')" = 1 ] || die "p3 dev 0 is not multi-level"

# damage 0.9.0 misses and we must not
miss() {  # description damage...
	local d=$1; shift
	cp "$WORK/p2.bin" "$WORK/m.bin"
	"$DMG" "$@" "$WORK/m.bin" >/dev/null
	note "$d"
	expect_rc 0 "$REF_CHECK" "$WORK/m.bin"
	expect_rc 64 "$REF1/thin_check" "$WORK/m.bin"   # 1.1.0 catches these too
	expect_rc 1 "$CHK" "$WORK/m.bin"
}
# a used data block: find one through a mapping of device 0
read -r DB _ < <("$DMG" --mapping "0:$(sed -n 's/.*origin_b[a-z]*="\([0-9]*\)".*/\1/p' "$WORK/p2.xml" | head -1)" "$WORK/p2.bin")
miss "data bitmap entry of used block $DB 1 -> 0" --set-count "data:$DB=0"
assert_contains "$WORK/err" "data space map: 1 data blocks have bad reference counts"
MB=$(sed -n 's/.*dev_id="0" mapped_blocks="\([0-9]*\)".*/\1/p' "$WORK/p2.xml")
miss "details mapped_blocks + 1" --set-details "0:mapped_blocks=$((MB + 1))"
assert_contains "$WORK/err" "Thin device 0 has unexpected number of mappings, expected $((MB + 1)), actual $MB"
miss "leaked data block" --leak data 1
assert_contains "$WORK/err" "1 data blocks have leaked"
echo "check_oracle: ${#shapes[@]} pools"
