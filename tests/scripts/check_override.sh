# thin_check --override-mapping-root / --override-details-root: everything
# that can be checked is checked (the space maps included); a root that
# cannot be walked (0, beyond the end) is fatal with a clear message, and
# the check never exits 0 on what it could not check.  Verdicts are
# compared with 1.1.0 on every fixture, with the true roots and with
# stale ones.
source "$TOP/tests/lib.sh"
need_ref1
C=$BIN/thin_check
DMG=$DEVBIN/thin_damage
info() { "$DMG" --info "$2" | sed -n "s/^$1=//p"; }

B=$(fixture_copy basic)
MR=$(info data_mapping_root "$B")
DR=$(info device_details_root "$B")
NB=$(info metadata_sm_nr_blocks "$B")

note "the true roots as overrides: clean, and the space maps are compared"
expect_rc 0 "$C" --override-mapping-root "$MR" --override-details-root "$DR" "$B"
assert_contains "$WORK/err" "checking space map counts"

note "roots that cannot be walked: fatal, named, exit 1 (1.1.0 rejects them too)"
# case: option value message
while IFS=: read -r opt val msg; do
	expect_rc 1 "$C" "$opt" "$val" "$B"
	assert_contains "$WORK/err" "$msg"
	assert_contains "$WORK/err" "reference counts not compared with the space maps"
	expect_rc 1 "$C" -q "$opt" "$val" "$B"
	[ ! -s "$WORK/err" ] || die "-q printed something"
	rc=0; "$REF1/thin_check" -q "$opt" "$val" "$B" || rc=$?
	[ "$rc" != 0 ] || die "1.1.0 accepts $opt $val (expected a rejection)"
done <<EOF
--override-mapping-root:999999:--override-mapping-root 999999 is beyond the end of the metadata ($NB blocks): the mapping tree cannot be checked
--override-mapping-root:$NB:--override-mapping-root $NB is beyond the end
--override-mapping-root:0:--override-mapping-root 0 is the superblock, not a btree node: the mapping tree cannot be checked
--override-details-root:0:--override-details-root 0 is the superblock, not a btree node: the device details tree cannot be checked
--override-details-root:999999:--override-details-root 999999 is beyond the end of the metadata
EOF
expect_rc 1 "$C" --override-mapping-root "$MR" --override-details-root 0 "$B"
expect_rc 1 "$C" --override-mapping-root 0 --override-details-root "$DR" "$B"

note "a root of the wrong tree: walked, found wrong"
expect_rc 1 "$C" --override-mapping-root "$DR" "$B"
assert_contains "$WORK/err" "Inconsistency between the details tree and the mapping tree"
expect_rc 1 "$C" --override-details-root "$MR" "$B"

note "the space-map check stays on: a leak under the true roots fails"
L=$(fixture_copy basic)
"$DMG" --leak data 1 "$L" >/dev/null
expect_rc 1 "$C" --override-mapping-root "$MR" "$L"
assert_contains "$WORK/err" "1 data blocks have leaked"
assert_not_contains "$WORK/err" "perhaps you wanted to run with --auto-repair"
expect_rc 0 "$C" --ignore-non-fatal-errors --override-mapping-root "$MR" "$L"
"$DMG" --leak metadata 1 "$L" >/dev/null
expect_rc 1 "$C" --override-details-root "$DR" "$L"
assert_contains "$WORK/err" "1 metadata blocks have leaked"

note "damage below an overridden root is found"
D=$(fixture_copy basic)
LEAF=$("$DMG" --leaf-of 1 "$D")
"$DMG" --set-node-field "$LEAF:blocknr=7" "$D"
expect_rc 1 "$C" --override-mapping-root "$MR" "$D"
assert_contains "$WORK/err" "blocknr mismatch in btree node (block $LEAF)"

note "a bad root in the superblock, overridden by the right one: clean, with a warning (as 1.1.0)"
S=$(fixture_copy basic)
"$DMG" --set-sb-field data_mapping_root=0 "$S"
expect_rc 1 "$C" "$S"
expect_rc 0 "$C" --override-mapping-root "$MR" "$S"
assert_contains "$WORK/err" "data mapping root 0 in the superblock is not a valid metadata block (overridden by --override-mapping-root)"
expect_rc 0 "$REF1/thin_check" --override-mapping-root "$MR" "$S"

note "every fixture: the true roots, then stale roots; never 0 where 1.1.0 rejects"
n=0 agree=0
for fx in $(fixtures); do
	F=$(fixture_copy "$fx")
	mr=$(info data_mapping_root "$F")
	dr=$(info device_details_root "$F")
	plain=0; "$C" -q "$F" || plain=$?
	over=0; "$C" -q --override-mapping-root "$mr" --override-details-root "$dr" "$F" || over=$?
	[ "$plain" = "$over" ] || die "$fx: exit $plain plain, $over with its own roots as overrides"
	for t in $mr $("$DMG" --find-nodes top "$F" | head -2); do
		for d in $dr $("$DMG" --find-nodes details "$F" | head -2); do
			ours=0; "$C" -q --override-mapping-root "$t" --override-details-root "$d" "$F" || ours=$?
			ref=0; "$REF1/thin_check" -q --override-mapping-root "$t" --override-details-root "$d" "$F" || ref=$?
			n=$((n + 1))
			[ "$ours" = 0 ] || [ "$ours" = 1 ] || die "$fx $t $d: exit $ours"
			[ "$ours" != 0 ] || [ "$ref" = 0 ] || die "$fx: mapping $t details $d: we exit 0, 1.1.0 $ref"
			{ [ "$ours" = 0 ] && [ "$ref" = 0 ]; } || { [ "$ours" != 0 ] && [ "$ref" != 0 ]; } && agree=$((agree + 1))
			[ "$ours" != 0 ] && [ "$ref" = 0 ] && echo "disagreement: $fx mapping $t details $d: we reject, 1.1.0 accepts"
		done
	done
done
note "$n root pairs tried, $agree verdicts agree with 1.1.0"
[ "$n" -gt 20 ] || die "too few root pairs ($n)"

note "overrides and repairs do not mix (usage error, nothing written)"
cp "$L" "$WORK/l.keep"
expect_rc 2 "$C" --auto-repair --override-mapping-root "$MR" "$L"
expect_rc 2 "$C" --clear-needs-check-flag --override-details-root "$DR" "$L"
cmp -s "$L" "$WORK/l.keep" || die "written"
echo "override roots: ok"
