#!/usr/bin/env bash
# thin_names: the pending-create / pending-delete protocol, CAS, gc,
# export/import, binding by tag and by fingerprint, and interop with the
# reference tools (tag ignored by their check and dump, dropped by their
# repair and dump->restore; rebind brings it back; a foreign table is
# refused).
source "$TOP/tests/lib.sh"
N=$BIN/thin_names
MD=$(fixture_copy snapshots)   # ids 0-3, transaction 7
T=$WORK/t.tmn

note "no tag yet: writers refuse (exit 3)"
expect_rc 3 "$N" --table "$T" "$MD" set 1 --name a
assert_contains "$WORK/err" "the pool has no tag"
/usr/sbin/thin_dump "$MD" > "$WORK/before.xml"

note "tag: written once, then printed; reference check and dump unaffected"
expect_rc 0 "$N" "$MD" tag
tag=$(cat "$WORK/out")
[[ $tag =~ ^TM[0-9A-HJKMNP-TV-Z]{14}$ ]] || die "bad tag '$tag'"
[ "$(dd if="$MD" bs=1 skip=16 count=16 status=none)" = "$tag" ] || die "tag not in uuid"
expect_rc 0 "$N" "$MD" tag
[ "$(cat "$WORK/out")" = "$tag" ] || die "tag changed"
expect_rc 0 /usr/sbin/thin_check "$MD"
/usr/sbin/thin_dump "$MD" > "$WORK/after.xml"
assert_same "$WORK/before.xml" "$WORK/after.xml"
[ -x "$BIN/thin_check" ] && expect_rc 0 "$BIN/thin_check" "$MD"

note "create protocol: set --pending, (create), confirm"
expect_rc 2 "$N" --table "$T" "$MD" set 9 --name vm-new
assert_contains "$WORK/err" "not in the pool"
expect_rc 0 "$N" --table "$T" "$MD" set 9 --name vm-new --pending
expect_rc 2 "$N" --table "$T" "$MD" confirm 9
expect_rc 0 "$N" --table "$T" "$MD" set 1 --name vm-alpha
expect_rc 0 "$N" --table "$T" "$MD" set 2 --blob-hex 00ff7f
expect_rc 0 "$N" --table "$T" "$MD" list
assert_contains "$WORK/out" "$(printf '1\tpresent\tsettled\tok\tvm-alpha')"
assert_contains "$WORK/out" "$(printf '2\tpresent\tsettled\tok\t00ff7f')"
assert_contains "$WORK/out" "$(printf '9\tabsent\tpending-create\t-\tvm-new')"
expect_rc 0 "$N" --table "$T" "$MD" get 1
[ "$(cat "$WORK/out")" = vm-alpha ] || die "get"
expect_rc 0 "$N" --table "$T" "$MD" get 1 --hex
[ "$(cat "$WORK/out")" = 766d2d616c706861 ] || die "get --hex"
expect_rc 0 "$N" --table "$T" "$MD" get 2 --raw
[ "$(od -An -tx1 "$WORK/out" | tr -d ' ')" = 00ff7f ] || die "get --raw"
expect_rc 1 "$N" --table "$T" "$MD" get 7
expect_rc 0 "$N" --table "$T" --json "$MD" list
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["generation"]==3 and len(d["entries"])==3' "$WORK/out"

note "thin_reconcile sees the intent and the names"
printf '1\tvm-alpha\n2\tb\n3\tc\n0\td\n' > "$WORK/rec"
expect_rc 0 "$BIN/thin_reconcile" --records "$WORK/rec" --table "$T" --tsv --no-space "$MD"
assert_contains "$WORK/out" "$(printf 'intent\t9\tpending-create\tno\tdrop-entry\tvm-new')"
assert_contains "$WORK/out" "$(printf 'binding\tbound-by-tag\t%s\t3' "$tag")"
printf '1\tvm-alpha\n' > "$WORK/rec"
expect_rc 1 "$BIN/thin_reconcile" --records "$WORK/rec" --table "$T" --tsv --no-space --free-ids 2 "$MD"
assert_contains "$WORK/out" "$(printf 'orphan\t2\t64\t0\t2\t2\t-\t-\t-\t00ff7f')"
# 9 is in the table: never offered
[ "$(awk -F'\t' '$1 == "free" {printf "%s ", $2}' "$WORK/out")" = "4 5 " ] || die "free ids with table"

note "compare-and-swap: --if-generation"
expect_rc 2 "$N" --table "$T" "$MD" set 1 --name x --if-generation 2
assert_contains "$WORK/err" "generation is 3, not 2"
expect_rc 0 "$N" --table "$T" "$MD" set 1 --name vm-alpha2 --if-generation 3
expect_rc 0 "$N" --table "$T" "$MD" get 1
[ "$(cat "$WORK/out")" = vm-alpha2 ] || die "CAS write"

note "delete protocol: mark-delete, (delete), delete; gc"
expect_rc 0 "$N" --table "$T" "$MD" mark-delete 2
expect_rc 0 "$N" --table "$T" "$MD" list
assert_contains "$WORK/out" "$(printf '2\tpresent\tpending-delete')"
expect_rc 0 "$N" --table "$T" "$MD" delete 2
expect_rc 1 "$N" --table "$T" "$MD" delete 2
expect_rc 0 "$N" --table "$T" "$MD" set 12 --name stale --allow-absent
expect_rc 0 "$N" --table "$T" "$MD" gc --dry-run
assert_contains "$WORK/out" "would drop 12"
expect_rc 0 "$N" --table "$T" "$MD" get 12
expect_rc 0 "$N" --table "$T" "$MD" gc
assert_contains "$WORK/out" "dropped 12"
assert_not_contains "$WORK/out" "dropped 9"
expect_rc 1 "$N" --table "$T" "$MD" get 12

note "export / import round trip (records format)"
expect_rc 0 "$N" --table "$T" "$MD" set 3 --name "$(printf 'tab\there')"
expect_rc 0 "$N" --table "$T" "$MD" set 0 --blob-hex 0a5c09ff
expect_rc 0 "$N" --table "$T" "$MD" export
cp "$WORK/out" "$WORK/exported"
expect_rc 0 "$N" --table "$WORK/t2.tmn" "$MD" import "$WORK/exported" --replace
expect_rc 0 "$N" --table "$WORK/t2.tmn" "$MD" export
assert_same "$WORK/exported" "$WORK/out"
expect_rc 0 "$N" --table "$WORK/t2.tmn" "$MD" get 0 --hex
[ "$(cat "$WORK/out")" = 0a5c09ff ] || die "binary blob through export/import"

note "corrupt table: exit 4, .prev still valid"
cp "$T" "$WORK/bad.tmn"
printf 'X' | dd of="$WORK/bad.tmn" bs=1 seek=70 conv=notrunc status=none
expect_rc 4 "$N" --table "$WORK/bad.tmn" "$MD" list
expect_rc 17 "$BIN/thin_reconcile" --records "$WORK/rec" --table "$WORK/bad.tmn" --no-space "$MD"
assert_contains "$WORK/out" "table corrupt"
expect_rc 0 "$N" --table "$T.prev" "$MD" list

note "reference repair drops the tag: unbound (3), rebind by fingerprint"
R2=$WORK/repaired.bin
truncate -s 8M "$R2"
/usr/sbin/thin_repair -i "$MD" -o "$R2"
[ "$(od -An -tx1 -j16 -N16 "$R2" | tr -d ' \n')" = 00000000000000000000000000000000 ] ||
	die "the reference repair kept the uuid?"
expect_rc 3 "$N" --table "$T" "$R2" list
assert_contains "$WORK/err" "run 'thin_names rebind'"
expect_rc 1 "$BIN/thin_reconcile" --records "$WORK/rec" --table "$T" --no-space "$R2"
assert_contains "$WORK/out" "table bound-by-fingerprint"
expect_rc 0 "$N" --table "$T" "$R2" rebind
[ "$(dd if="$R2" bs=1 skip=16 count=16 status=none)" = "$tag" ] || die "rebind wrote another tag"
expect_rc 0 "$N" --table "$T" "$R2" list
expect_rc 0 /usr/sbin/thin_check "$R2"

note "reference dump -> restore drops it too; a table of another pool is refused"
O=$WORK/other.bin
truncate -s 8M "$O"
/usr/sbin/thin_dump "$MD" | sed 's/transaction="0"/transaction="5"/g' > "$WORK/other.xml"
/usr/sbin/thin_restore -i "$WORK/other.xml" -o "$O"
expect_rc 3 "$N" --table "$T" "$O" rebind
assert_contains "$WORK/err" "does not match this pool"
expect_rc 0 "$N" "$O" tag
expect_rc 3 "$N" --table "$T" "$O" list
expect_rc 17 "$BIN/thin_reconcile" --records "$WORK/rec" --table "$T" --no-space "$O"
assert_contains "$WORK/out" "table unbound"

note "tag on an active pool / non-thin input"
printf 'not metadata' > "$WORK/junk"
truncate -s 1M "$WORK/junk"
expect_rc 5 "$N" "$WORK/junk" tag
expect_rc 5 "$N" "$WORK/missing" list

note "usage"
expect_rc 64 "$N" "$MD"
expect_rc 64 "$N" "$MD" frobnicate
expect_rc 64 "$N" --table "$T" "$MD" set 1
expect_rc 64 "$N" --table "$T" "$MD" set x --name a
expect_rc 64 "$N" --table "$T" "$MD" set 1 --name a --blob-hex 00
expect_rc 64 "$N" --table "$T" "$MD" set 1 --blob-hex 0g
expect_rc 64 "$N" --table "$T" "$MD" set 1 --name "$(printf '\xff')"
expect_rc 64 "$N" "$MD" rebind
expect_rc 0 "$N" --help
assert_contains "$WORK/out" "Usage: thin_names"
expect_rc 0 "$N" -V
echo "names cli: ok"
