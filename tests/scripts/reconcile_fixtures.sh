#!/usr/bin/env bash
# thin_reconcile on kernel-written fixtures: -m on held_root reads the
# snapshot and reports held_root; orphan space figures agree with thin_ls;
# free-id strategies never return an occupied, pending or quarantined id,
# including a nearly full and a full id space.
source "$TOP/tests/lib.sh"
R=$BIN/thin_reconcile

note "held_root: live view has an orphan, the snapshot view does not"
MD=$(fixture_copy held_root)
printf '0\torigin\n1\tsnap\n' > "$WORK/rec"
expect_rc 1 "$R" --records "$WORK/rec" --tsv "$MD"
# thin 2 (5 blocks, all its own) exists only after the snapshot was taken
[ "$(awk -F'\t' '$1 == "orphan" {print $2, $3, $7, $8}' "$WORK/out")" = "2 5 5 0" ] ||
	{ cat "$WORK/out"; die "live orphan"; }
held=$(awk -F'\t' '$1 == "pool" {print $6}' "$WORK/out")
[ "$held" -gt 0 ] || die "held_root not reported"
expect_rc 0 "$R" --records "$WORK/rec" --tsv -m "$MD"
assert_contains "$WORK/out" "$(printf 'pool\t1\t')"
assert_contains "$WORK/out" "metadata-snap"
[ "$(awk -F'\t' '$1 == "pool" {print $6}' "$WORK/out")" = "$held" ] || die "held_root under -m"
expect_rc 0 "$R" --records "$WORK/rec" -m="$held" --expect-transaction 1 "$MD"
assert_contains "$WORK/out" "state in_sync"

note "orphan exclusive/shared equal thin_ls's on every fixture"
for fx in $(fixtures); do
	md=$(fixture_copy "$fx")
	: > "$WORK/none"
	rc=0
	"$R" --records "$WORK/none" --tsv "$md" > "$WORK/out" 2>"$WORK/err" || rc=$?
	if [ "$rc" -ge 32 ]; then
		expect_rc 1 "$BIN/thin_ls" "$md"
		note "$fx: unreadable for both"
		continue
	fi
	awk -F'\t' '$1 == "orphan" {print $2, $3, $7, $8}' "$WORK/out" > "$WORK/ours"
	"$BIN/thin_ls" --no-headers -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS "$md" |
		awk '{print $1, $2, $3, $4}' > "$WORK/ls"
	assert_same "$WORK/ls" "$WORK/ours"
	# everything an orphan maps is reclaimable when nothing is recorded: the
	# distinct data blocks the live devices map.  That is the data space
	# map's nr_allocated, unless the kernel leaked a block (allocated, never
	# mapped: full_512k, whose last commit failed) or a held metadata
	# snapshot still pins blocks the live trees dropped (held_writes)
	rec=$(awk -F'\t' '$1 == "summary" {print $11}' "$WORK/out")
	used=$(od -An -tu8 -j72 -N8 "$md" | tr -d ' ')   # data space map nr_allocated
	mapped=$(/usr/sbin/thin_dump "$md" | python3 -c '
import re, sys
s = set()
for l in sys.stdin:
    m = re.search(r"single_mapping origin_block=\"\d+\" data_block=\"(\d+)\"", l)
    if m: s.add(int(m.group(1))); continue
    m = re.search(r"range_mapping origin_begin=\"\d+\" data_begin=\"(\d+)\" length=\"(\d+)\"", l)
    if m: s.update(range(int(m.group(1)), int(m.group(1)) + int(m.group(2))))
print(len(s))')
	[ "$mapped" -le "$used" ] || die "$fx: $mapped data blocks mapped, only $used in use"
	held=$(od -An -tu8 -j56 -N8 "$md" | tr -d ' ')
	[ "$held" != 0 ] || grep -q 'data blocks have leaked' "$FIXTURES/$fx/ref1-thin_check.txt" 2>/dev/null ||
		[ "$mapped" = "$used" ] || die "$fx: $mapped data blocks mapped, $used in use, no leak, no held root"
	used=$mapped
	[ "$rec" = "$used" ] || die "$fx: reclaimable $rec, data blocks mapped $used"
	note "$fx: $(wc -l < "$WORK/ours") orphans, reclaimable $rec"
done

note "free ids: strategies avoid pool, records, pending and quarantine"
MD=$(fixture_copy snapshots)   # ids 0-3
printf '5\trec\n7\tpend\tpending\n' > "$WORK/rec"   # 5 dangling: exit 1|2
printf '# quarantined\n4\n8-10\n' > "$WORK/q"
expect_rc 3 "$R" --records "$WORK/rec" --quarantine "$WORK/q" --free-ids 3 --tsv --no-space "$MD"
[ "$(awk -F'\t' '$1 == "free" {printf "%s ", $2}' "$WORK/out")" = "6 11 12 " ] || die "lowest"
expect_rc 3 "$R" --records "$WORK/rec" --quarantine "$WORK/q" --free-ids 2 --strategy after-max --tsv --no-space "$MD"
[ "$(awk -F'\t' '$1 == "free" {printf "%s ", $2}' "$WORK/out")" = "8 9 " ] && die "after-max returned quarantined ids"
[ "$(awk -F'\t' '$1 == "free" {printf "%s ", $2}' "$WORK/out")" = "11 12 " ] || die "after-max"
printf '0-3\n12-16777215\n' >> "$WORK/q"   # free: 6 and 11 only
for s in lowest after-max random; do
	expect_rc 3 "$R" --records "$WORK/rec" --quarantine "$WORK/q" --free-ids 2 --strategy $s --tsv --no-space "$MD"
	got=$(awk -F'\t' '$1 == "free" {print $2}' "$WORK/out" | sort -n | tr '\n' ' ')
	[ "$got" = "6 11 " ] || die "$s on a nearly full id space: $got"
done
expect_rc 32 "$R" --records "$WORK/rec" --quarantine "$WORK/q" --free-ids 3 --strategy random "$MD"
assert_contains "$WORK/err" "only 2 free thin ids left, 3 requested"
printf '0-16777215\n' > "$WORK/full"
expect_rc 32 "$R" --records "$WORK/rec" --quarantine "$WORK/full" --free-ids 1 "$MD"
assert_contains "$WORK/err" "only 0 free thin ids left"
printf '0-16777214\n' > "$WORK/one"
expect_rc 3 "$R" --records "$WORK/rec" --quarantine "$WORK/one" --free-ids 1 --strategy random --tsv --no-space "$MD"
assert_contains "$WORK/out" "$(printf 'free\t16777215')"

note "random draws: 2000 ids, none taken, all distinct"
printf '100-200\n' > "$WORK/q"
expect_rc 3 "$R" --records "$WORK/rec" --quarantine "$WORK/q" --free-ids 2000 --strategy random --tsv --no-space "$MD"
awk -F'\t' '$1 == "free" {print $2}' "$WORK/out" > "$WORK/ids"
[ "$(sort -u "$WORK/ids" | wc -l)" = 2000 ] || die "random ids not distinct"
awk '$1 <= 7 || ($1 >= 100 && $1 <= 200) || $1 > 16777215 {exit 1}' "$WORK/ids" ||
	die "random returned a taken id"
printf '5-x\n' > "$WORK/badq"
expect_rc 32 "$R" --records "$WORK/rec" --quarantine "$WORK/badq" --free-ids 1 "$MD"
assert_contains "$WORK/err" "line 1: expected an id or a range"
echo "reconcile fixtures: ok"
