#!/usr/bin/env bash
# thin_reconcile on pools restored from hand-written XML: the failure
# classes F1-F9 of NAMES.md §2.7, the space figures of orphans, the
# transaction fence and the exit-code bit mask (NAMES.md §7.6).
source "$TOP/tests/lib.sh"
R=$BIN/thin_reconcile

# Pool: 1 live origin (data 0-9); 2 orphan snapshot of 1 (same blocks);
# 3 orphan with only its own blocks (20-24); 4 and 5 orphans sharing
# 30-33 only with each other; 6 live, created at transaction 8 time 2.
cat > "$WORK/pool.xml" <<'EOF'
<superblock uuid="" time="2" transaction="9" flags="0" version="2" data_block_size="128" nr_data_blocks="100">
  <device dev_id="1" mapped_blocks="10" transaction="0" creation_time="0" snap_time="1">
    <range_mapping origin_begin="0" data_begin="0" length="10" time="0"/>
  </device>
  <device dev_id="2" mapped_blocks="10" transaction="1" creation_time="1" snap_time="1">
    <range_mapping origin_begin="0" data_begin="0" length="10" time="0"/>
  </device>
  <device dev_id="3" mapped_blocks="5" transaction="2" creation_time="1" snap_time="1">
    <range_mapping origin_begin="0" data_begin="20" length="5" time="1"/>
  </device>
  <device dev_id="4" mapped_blocks="4" transaction="3" creation_time="1" snap_time="2">
    <range_mapping origin_begin="0" data_begin="30" length="4" time="1"/>
  </device>
  <device dev_id="5" mapped_blocks="4" transaction="4" creation_time="2" snap_time="2">
    <range_mapping origin_begin="0" data_begin="30" length="4" time="1"/>
  </device>
  <device dev_id="6" mapped_blocks="1" transaction="8" creation_time="2" snap_time="2">
    <single_mapping origin_block="0" data_block="50" time="2"/>
  </device>
</superblock>
EOF
MD=$WORK/pool.bin
truncate -s 8M "$MD"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/pool.xml" -o "$MD"

# row CLASS DEV_ID -> the TSV row (from $WORK/out)
row() { awk -F'\t' -v c="$1" -v d="$2" '$1 == c && $2 == d' "$WORK/out"; }
col() { row "$1" "$2" | cut -f"$3"; }
want() { [ "$1" = "$2" ] || { cat "$WORK/out"; die "$3: got '$1', expected '$2'"; }; }

note "F1: orphans and their space"
printf '1\tvm-alpha\n6\tvm-beta\n' > "$WORK/rec"
expect_rc 1 "$R" --records "$WORK/rec" --tsv "$MD"
# orphan columns: class dev mapped trans ctime stime excl shared with_live name
want "$(col orphan 2 7-9)" "$(printf '0\t10\t10')" "snapshot of a live origin"
want "$(col orphan 3 7-9)" "$(printf '5\t0\t0')" "exclusive-only orphan"
want "$(col orphan 4 7-9)" "$(printf '0\t4\t0')" "orphans sharing with each other (4)"
want "$(col orphan 5 7-9)" "$(printf '0\t4\t0')" "orphans sharing with each other (5)"
[ -z "$(row orphan 1)" ] && [ -z "$(row orphan 6)" ] || die "a recorded device listed as orphan"
# reclaimable = 5 (dev 3) + 4 (30-33, shared by orphans only); the snapshot's blocks stay
want "$(awk -F'\t' '$1 == "summary" {print $11 " " $12}' "$WORK/out")" "9 589824" "reclaimable"

note "same figures in JSON"
expect_rc 1 "$R" --records "$WORK/rec" --json "$MD"
python3 - "$WORK/out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["schema"] == "thinmeta.reconcile/1"
o = {x["dev_id"]: x for x in d["orphans"]}
assert sorted(o) == [2, 3, 4, 5], o
assert o[2]["shared_with_live_blocks"] == 10 and o[2]["exclusive_blocks"] == 0
assert d["summary"]["reclaimable_blocks"] == 9 and d["summary"]["matched"] == 2
assert d["pool"]["transaction_id"] == 9 and d["pool"]["held_root"] == 0
EOF

note "--no-space: same classes, no figures"
expect_rc 1 "$R" --records "$WORK/rec" --tsv --no-space "$MD"
want "$(col orphan 3 7-9)" "$(printf -- '-\t-\t-')" "no-space figures"

note "all recorded: clean, exit 0"
printf '1\ta\n2\tb\n3\tc\n4\td\n5\te\n6\tf\n' > "$WORK/rec"
expect_rc 0 "$R" --records "$WORK/rec" "$MD"
assert_contains "$WORK/out" "orphans 0, dangling 0"

note "F2/F4: pending records both ways, dangling"
printf '1\ta\n2\tb\n3\tc\n4\td\n5\te\n6\tf\tpending\n7\tg\tpending\n8\th\n' > "$WORK/rec"
expect_rc 2 "$R" --records "$WORK/rec" --tsv "$MD"
want "$(col pending 6 4-6)" "$(printf '6\tyes\troll-forward')" "pending present"
want "$(col pending 7 4-6)" "$(printf '7\tno\troll-back')" "pending absent"
want "$(col dangling 8 3-4)" "$(printf 'h\t8')" "dangling"
[ -z "$(row dangling 7)" ] || die "a pending record reported as dangling"

note "F5: stale records (orphans and dangling at once)"
printf '1\ta\n9\told\n' > "$WORK/rec"
expect_rc 3 "$R" --records "$WORK/rec" "$MD"

note "F7: id reused (record stamp 7,1 against details 8,2)"
printf '1\ta\t0\t0\n2\tb\n3\tc\n4\td\n5\te\n6\tf\t7\t1\n' > "$WORK/rec"
expect_rc 4 "$R" --records "$WORK/rec" --tsv "$MD"
want "$(awk -F'\t' '$1 == "incarnation" {print $3, $6, $7, $8, $9}' "$WORK/out")" "6 7 1 8 2" "incarnation"
printf '1\ta\t0\t0\n2\tb\n3\tc\n4\td\n5\te\n6\tf\t8\t2\n' > "$WORK/rec"
expect_rc 0 "$R" --records "$WORK/rec" "$MD"

note "duplicates: one id twice; one name on two ids with --unique-names"
printf '1\ta\n1\ta2\n2\tb\n3\tc\n4\tsame\n5\tsame\n6\tf\n' > "$WORK/rec"
expect_rc 4 "$R" --records "$WORK/rec" --tsv "$MD"
want "$(awk -F'\t' '$1 == "duplicate" {print $2, $3, $6}' "$WORK/out")" "id 1 1,2" "duplicate id"
expect_rc 4 "$R" --records "$WORK/rec" --tsv --unique-names "$MD"
assert_contains "$WORK/out" "$(printf 'duplicate\tname\t-\tsame\t4,5\t5,6')"

note "fence: equal, expected - 1, ahead, zero/zero; --strict-fence"
printf '1\ta\n2\tb\n3\tc\n4\td\n5\te\n6\tf\n' > "$WORK/rec"
expect_rc 0 "$R" --records "$WORK/rec" --expect-transaction 9 "$MD"
assert_contains "$WORK/out" "state in_sync"
expect_rc 0 "$R" --records "$WORK/rec" --expect-transaction 10 "$MD"
assert_contains "$WORK/out" "state pending_one"
expect_rc 8 "$R" --records "$WORK/rec" --expect-transaction 10 --strict-fence "$MD"
expect_rc 8 "$R" --records "$WORK/rec" --expect-transaction 8 "$MD"
assert_contains "$WORK/out" "state mismatch"
E=$WORK/empty.bin
truncate -s 4M "$E"
printf '<superblock uuid="" time="0" transaction="0" flags="0" version="2" data_block_size="128" nr_data_blocks="100">\n</superblock>\n' > "$WORK/empty.xml"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/empty.xml" -o "$E"
: > "$WORK/none"
expect_rc 0 "$R" --records "$WORK/none" --expect-transaction 0 "$E"
assert_contains "$WORK/out" "state in_sync"

note "F6: two managers (foreign ids + fence behind)"
printf '1\ta\n6\tb\n' > "$WORK/rec"
expect_rc 9 "$R" --records "$WORK/rec" --expect-transaction 3 "$MD"

note "F8: repair dropped devices -> dangling for the lost ids"
printf '1\ta\n2\tb\n3\tc\n4\td\n5\te\n6\tf\n12\tlost\n13\tlost2\n' > "$WORK/rec"
expect_rc 2 "$R" --records "$WORK/rec" --tsv "$MD"
want "$(awk -F'\t' '$1 == "dangling"' "$WORK/out" | wc -l)" 2 "dangling count"

note "F9: free ids never hand out a pool id the records do not know"
printf '1\ta\n6\tf\n' > "$WORK/rec"
expect_rc 1 "$R" --records "$WORK/rec" --free-ids 3 --strategy lowest --tsv "$MD"
want "$(awk -F'\t' '$1 == "free" {printf "%s ", $2}' "$WORK/out")" "0 7 8 " "lowest"
expect_rc 1 "$R" --records "$WORK/rec" --free-ids 2 --strategy after-max --min-id 1 --tsv "$MD"
want "$(awk -F'\t' '$1 == "free" {printf "%s ", $2}' "$WORK/out")" "7 8 " "after-max"

note "records input errors -> 32, usage errors -> 64"
printf '1\ta\nx\tb\n' > "$WORK/bad"
expect_rc 32 "$R" --records "$WORK/bad" "$MD"
assert_contains "$WORK/err" "line 2: bad dev_id"
printf '16777216\ta\n' > "$WORK/bad"
expect_rc 32 "$R" --records "$WORK/bad" "$MD"
printf '1\ta\\q\n' > "$WORK/bad"
expect_rc 32 "$R" --records "$WORK/bad" "$MD"
assert_contains "$WORK/err" "bad escape"
printf '1\ta\t5\n' > "$WORK/bad"
expect_rc 32 "$R" --records "$WORK/bad" "$MD"
expect_rc 32 "$R" --records "$WORK/missing" "$MD"
expect_rc 32 "$R" --records "$WORK/rec" "$WORK/missing.bin"
assert_contains "$WORK/err" "Couldn't find input file"
expect_rc 64 "$R" "$MD"
expect_rc 64 "$R" --records "$WORK/rec"
expect_rc 64 "$R" --records "$WORK/rec" --strategy sideways "$MD"
expect_rc 64 "$R" --records "$WORK/rec" --bogus "$MD"
expect_rc 0 "$R" --help
assert_contains "$WORK/out" "Usage: thin_reconcile"
expect_rc 0 "$R" -V
expect_rc 32 "$R" --records "$WORK/rec" -m "$MD"
assert_contains "$WORK/err" "no current metadata snap"

note "names with escapes and non-UTF-8 bytes survive every format"
printf '11\ttab\\there\\\\x\n12\t\xff\xfeok\n' > "$WORK/rec"
expect_rc 3 "$R" --records "$WORK/rec" --tsv --no-space "$MD"
assert_contains "$WORK/out" "$(printf 'dangling\t11\ttab\\there\\\\x\t1')"
expect_rc 3 "$R" --records "$WORK/rec" --json --no-space "$MD"
python3 - "$WORK/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
n = {x["dev_id"]: x["name"] for x in d["dangling"]}
assert n[11] == "tab\there\\x", n
assert n[12] == "\u00ff\u00feok", n
PY
echo "reconcile scenarios: ok"
