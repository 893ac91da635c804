#!/usr/bin/env bash
# thin_check against one damage at a time (FORMAT.md §10): each case is a
# fresh copy of a kernel fixture (or of a pool restored by the reference
# from gen_pool), damaged by thin_damage (re-checksummed where the damage
# is semantic), and must give the expected finding, severity and exit
# status.  Also: leak repair, fatal damage + repair writes nothing, bad
# input and usage errors.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1
DMG=$DEVBIN/thin_damage
CHK=$BIN/thin_check
[ -x "$DMG" ] || die "thin_damage not built"

# a reference-restored pool with multi-level trees (internal roots)
POOL=$WORK/pool.bin
"$DEVBIN/gen_pool" --scale tiny --seed 3 --origins 2 --snapshots 6 \
	--mappings 20000 -o "$WORK/pool.xml" >/dev/null 2>&1 || die "gen_pool failed"
truncate -s 16M "$POOL"
/usr/sbin/thin_restore -i "$WORK/pool.xml" -o "$POOL" || die "reference restore failed"

fresh() {  # fixture name or "pool" -> path of a fresh copy
	local out
	out=$(mktemp "$WORK/case.XXXXXX")
	if [ "$1" = pool ]; then cp "$POOL" "$out"; else gzip -dc "$FIXTURES/$1/metadata.bin.gz" >"$out"; fi
	echo "$out"
}
q() { "$DMG" "$@"; }   # query helper

# dmg FIXTURE LEVEL MESSAGE DAMAGE... : LEVEL F (exit 1, also with
# --ignore-non-fatal-errors), NF (exit 1, 0 when ignored) or W (exit 0)
dmg() {
	local fx=$1 level=$2 msg=$3
	shift 3
	IMG=$(fresh "$fx")
	"$DMG" "$@" "$IMG" >/dev/null || die "thin_damage $* failed"
	note "$fx: $* -> $level '$msg'"
	case $level in
	F) expect_rc 1 "$CHK" --ignore-non-fatal-errors "$IMG"
	   expect_rc 1 "$CHK" "$IMG"; assert_contains "$WORK/err" "$msg" ;;
	NF) expect_rc 0 "$CHK" --ignore-non-fatal-errors "$IMG"
	    expect_rc 1 "$CHK" "$IMG"; assert_contains "$WORK/err" "$msg" ;;
	W) expect_rc 0 "$CHK" "$IMG"; assert_contains "$WORK/err" "$msg" ;;
	esac
	oracles "$fx: $*" "$level" "$IMG"
}

# oracles CASE LEVEL IMG: 0.9.0's and 1.1.0's verdicts (plain and with
# --ignore-non-fatal-errors) beside ours, one line per case in $VERDICTS;
# the disagreements are compared with the documented ones at the end.
VERDICTS=$WORK/verdicts.tsv
: > "$VERDICTS"
oracles() {
	local c=$1 level=$2 img=$3 ours ours_i r0=0 r0i=0 r1=0 r1i=0
	case $level in F) ours=1 ours_i=1 ;; NF) ours=1 ours_i=0 ;; *) ours=0 ours_i=0 ;; esac
	"$REF0/thin_check" "$img" >/dev/null 2>&1 || r0=$?
	"$REF0/thin_check" --ignore-non-fatal-errors "$img" >/dev/null 2>&1 || r0i=$?
	timeout 60 "$REF1/thin_check" "$img" >/dev/null 2>&1 || r1=$?
	timeout 60 "$REF1/thin_check" --ignore-non-fatal-errors "$img" >/dev/null 2>&1 || r1i=$?
	printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$ours/$ours_i" "$r0/$r0i" "$r1/$r1i" "$level" >> "$VERDICTS"
}

# the undamaged inputs are clean
for fx in basic snapshots resized; do expect_rc 0 "$CHK" "$(fresh $fx)"; done
expect_rc 0 "$CHK" "$POOL"

B=$(fresh basic)
LEAF1=$(q --dev-root 1 "$B")
DROOT=$(q --info "$B" | sed -n 's/^device_details_root=//p')
DINDEX=$(q --info "$B" | sed -n 's/^data_bitmap_root=//p')
MINDEX=$(q --info "$B" | sed -n 's/^metadata_bitmap_root=//p')
DBITMAP=$(q --get-node-value "$DINDEX:0" "$B")
NR_DATA=$(q --info "$B" | sed -n 's/^data_nr_blocks=//p')
MB=$(q --info "$B" | sed -n 's/^metadata_sm_nr_blocks=//p')

# 1-3: superblock
dmg basic F "bad checksum in superblock (block 0)" --flip-byte 0:100
dmg basic F "wrong location" --set-sb-field blocknr=5
dmg basic F "bad magic number in superblock" --set-sb-field magic=1
dmg basic F "unsupported incompatible features" --set-sb-field incompat_flags=1
dmg basic F "bad metadata block size 16" --set-sb-field metadata_block_size=16
dmg basic F "bad data block size 100" --set-sb-field data_block_size=100
dmg basic W "unknown superblock version 3" --set-sb-field version=3
dmg basic W "read-only compatible features" --set-sb-field compat_ro_flags=1
dmg basic F "data mapping root $((MB + 5)) is not a valid metadata block" --set-sb-field data_mapping_root=$((MB + 5))
dmg basic F "device details root 0 is not a valid" --set-sb-field device_details_root=0
dmg basic F "more than the maximum 4161600" --set-sb-field metadata_sm_nr_blocks=4161601
dmg basic F "but the device only" --set-sb-field metadata_sm_nr_blocks=$((MB + 1))
dmg basic F "metadata snap: not a superblock" --set-sb-field held_root=$LEAF1
dmg basic F "metadata snap: bad checksum in superblock copy" --set-sb-field held_root=$((MB - 1))

# 4-7: nodes
dmg basic F "thin device 1: bad checksum in btree node (block $LEAF1), affecting keys [0, -]" --flip-byte "$LEAF1:100"
dmg basic F "thin device 1: blocknr mismatch in btree node (block $LEAF1)" --set-node-field "$LEAF1:blocknr=7"
dmg basic F "thin device 1: not a btree node in btree node (block $DBITMAP)" \
	--set-node-value "$(q --info "$B" | sed -n 's/^data_mapping_root=//p'):1=$DBITMAP"
dmg basic F "bad node flags in btree node (block $LEAF1)" --set-node-field "$LEAF1:flags=3"
dmg basic F "max_entries is too large in btree node (block $LEAF1)" --set-node-field "$LEAF1:max_entries=300"
dmg basic F "nr_entries > max_entries in btree node (block $LEAF1)" --set-node-field "$LEAF1:nr_entries=253"
dmg basic F "value_size mismatch in btree node (block $LEAF1)" --set-node-field "$LEAF1:value_size=4"
dmg basic F "max_entries is not divisible by 3 in btree node (block $LEAF1)" --set-node-field "$LEAF1:max_entries=250"
dmg basic F "keys out of order in btree node (block $LEAF1)" --set-node-key "$LEAF1:3=1"
dmg basic F "device details tree: bad checksum in btree node (block $DROOT)" --zero-block "$DROOT"
P=$(fresh pool)
R0=$(q --dev-root 0 "$P")
R1=$(q --dev-root 1 "$P")
K1=$(q --get-node-key "$R0:1" "$P")
dmg pool F "outside the range given by parent $R0" --set-node-key "$R0:1=$((K1 + 1))"
dmg pool F "leaves at different depths" --set-node-value "$R0:1=$R1"
dmg pool F "cycle in tree" --set-node-value "$R0:1=$R0"
dmg pool F "block beyond the end of the metadata" --set-node-value "$R0:1=999999"
# underfull leaf (resized: one device, unshared data): drop entries, keep
# mapped_blocks right; the dropped data blocks leak
RZ=$(fresh resized)
RR=$(q --dev-root 0 "$RZ")
L=$(q --get-node-value "$RR:1" "$RZ")
N=$(q --node-info "$L" "$RZ" | sed -n 's/^nr_entries=//p')
MAPPED=$(/usr/sbin/thin_dump "$RZ" | sed -n 's/.*dev_id="0" mapped_blocks="\([0-9]*\)".*/\1/p')
[ -n "$MAPPED" ] && [ "$N" -gt 10 ] || die "unexpected resized fixture"
dmg resized NF "underfull node (10 entries) in btree node (block $L)" \
	--set-node-field "$L:nr_entries=10" --set-details "0:mapped_blocks=$((MAPPED - N + 10))"
assert_contains "$WORK/err" "$((N - 10)) data blocks have leaked"

# 8-11: thin semantics
dmg basic F "Inconsistency between the details tree and the mapping tree" --set-node-key "$DROOT:1=7"
dmg basic F "Thin device 1 has unexpected number of mappings, expected 21, actual 20" --set-details 1:mapped_blocks=21
V=$(q --get-node-value "$LEAF1:0" "$B")
dmg basic F "mappings to data blocks beyond the data device" --set-node-value "$LEAF1:0=$(( (NR_DATA << 24) | (V & 0xffffff) ))"
dmg basic W "mappings have a time later than the superblock time" --set-node-value "$LEAF1:0=$(( V | 5 ))"
dmg basic W "creation time 0 or snapshot time 9 is later than the superblock time" --set-details 1:snapshotted_time=9

# 12-17: space maps
dmg basic F "metadata space map: bad checksum in index block (block $MINDEX)" --flip-byte "$MINDEX:100"
dmg basic F "data space map index: unexpected key 5" --set-node-key "$DINDEX:0=5"
dmg basic F "data space map: bad checksum in bitmap 0 (block $DBITMAP)" --flip-byte "$DBITMAP:100"
dmg basic F "blocks have a bitmap count of 3 but no entry in the ref count tree" --set-bitmap-entry data:0=3
dmg basic F "data space map: 1 data blocks have bad reference counts" --set-count data:0=0
assert_contains "$WORK/err" "data block 0: reference count on disk 0, expected 1"
dmg basic F "data space map: 1 data blocks have bad reference counts" --set-count data:1=2
dmg basic F "metadata space map: 1 metadata blocks have bad reference counts" --set-count "metadata:$LEAF1=0"
dmg basic NF "3 data blocks have leaked" --leak data 3
assert_contains "$WORK/err" "perhaps you wanted to run with --auto-repair"
dmg basic NF "2 metadata blocks have leaked" --leak metadata 2
dmg basic W "data space map: bitmap 0 (block $DBITMAP) has nr_free 5" --set-index-field data:0:nr_free=5
dmg basic W "has none_free_before 16000 beyond its first free entry" --set-index-field data:0:none_free_before=16000
dmg basic W "data space map: nr_allocated is 5, but 36 blocks are in use" --set-sb-field data_nr_allocated=5
dmg basic NF "data space map: 1 entries beyond the end (4090 blocks) are not zero" --leak data 1 --set-sb-field data_nr_blocks=4090
OV=$(q --info "$P" | sed -n 's/^data_ref_count_root=//p')
while [ "$(q --node-info "$OV" "$P" | sed -n 's/^flags=//p')" = 1 ]; do OV=$(q --get-node-value "$OV:0" "$P"); done
[ "$(q --node-info "$OV" "$P" | sed -n 's/^nr_entries=//p')" -gt 0 ] || die "pool has no data counts >= 3"
dmg pool F "ref count tree entries are below 3" --set-node-value "$OV:0=2"
dmg pool F "bad reference counts" --set-node-value "$OV:0=9"

# needs_check: a warning only; cleared on request
N=$(fresh needs_check)
expect_rc 0 "$CHK" "$N"; assert_contains "$WORK/err" "needs_check flag is set"
cp "$N" "$WORK/nc0.bin"
expect_rc 0 "$CHK" "$N"; assert_same "$N" "$WORK/nc0.bin"      # read-only by default
expect_rc 0 "$CHK" --clear-needs-check-flag "$N"; assert_contains "$WORK/err" "cleared needs_check flag"
expect_rc 0 "$CHK" "$N"; assert_not_contains "$WORK/err" "needs_check"
[ "$(q --info "$N" | sed -n 's/^flags=//p')" = 0 ] || die "flag not cleared"

# leaks repaired (both modes) through the transaction manager: the bitmaps
# and the index are shadowed, so every block of the damaged state stays as
# it was; afterwards the pool is clean for all three checkers, holds what
# it held, and has as many free blocks as before the damage
need_ref0; need_ref1
for mode in --auto-repair --clear-needs-check-flag; do
	O=$(fresh basic); cp "$O" "$WORK/orig.bin"
	"$DMG" --leak data 3 --leak metadata 2 --set-sb-field flags=1 "$O" >/dev/null
	cp "$O" "$WORK/damaged.bin"
	expect_rc 0 "$CHK" $mode "$O"
	assert_contains "$WORK/err" "repairing data leaks"
	assert_contains "$WORK/err" "repairing metadata leaks"
	assert_contains "$WORK/err" "cleared needs_check flag"
	expect_rc 0 "$CHK" "$O"
	assert_not_contains "$WORK/err" "leaked"
	grep METADATA_FREE_BLOCKS "$WORK/out" > "$WORK/free.after"
	expect_rc 0 "$CHK" "$WORK/orig.bin"; grep METADATA_FREE_BLOCKS "$WORK/out" > "$WORK/free.before"
	assert_same "$WORK/free.before" "$WORK/free.after"
	expect_rc 0 "$REF0/thin_check" "$O"
	expect_rc 0 "$REF1/thin_check" "$O"
	"$BIN/thin_dump" "$O" > "$WORK/after.xml"; "$BIN/thin_dump" "$WORK/orig.bin" > "$WORK/before.xml"
	assert_same "$WORK/before.xml" "$WORK/after.xml"
	# only blocks free in the damaged state were written, and block 0
	python3 - "$WORK/damaged.bin" "$O" <<'PY' || die "$mode wrote over a block of the damaged state"
import struct, sys
a, b = open(sys.argv[1], 'rb').read(), open(sys.argv[2], 'rb').read()
sb = a[:4096]
nr, alloc, index = struct.unpack_from('<QQQ', sb, 192)
idx = a[index * 4096:(index + 1) * 4096]
used = set()
for i in range((nr + 16319) // 16320):
    bm, = struct.unpack_from('<Q', idx, 16 + 16 * i)
    words = a[bm * 4096 + 16:(bm + 1) * 4096]
    for j in range(min(16320, nr - i * 16320)):
        w, = struct.unpack_from('<Q', words, 8 * (j // 32))
        if (w >> (2 * (j % 32))) & 3:
            used.add(i * 16320 + j)
bad = [blk for blk in used if blk and a[blk * 4096:(blk + 1) * 4096] != b[blk * 4096:(blk + 1) * 4096]]
print("changed blocks of the damaged state:", bad)
sys.exit(1 if bad else 0)
PY
done
# entries beyond the end are zeroed by the repair too
O=$(fresh basic); "$DMG" --leak data 1 --set-sb-field data_nr_blocks=4090 "$O" >/dev/null
expect_rc 0 "$CHK" --auto-repair "$O"; expect_rc 0 "$CHK" "$O"; assert_not_contains "$WORK/err" "beyond"
# -q: nothing printed, even when repairing
O=$(fresh basic); "$DMG" --leak data 1 "$O" >/dev/null
expect_rc 0 "$CHK" -q --clear-needs-check-flag "$O"
[ ! -s "$WORK/out" ] && [ ! -s "$WORK/err" ] || die "-q printed something"
expect_rc 0 "$CHK" -q "$O"

# fatal damage (or a non-leak non-fatal one) + repair: nothing written
for d in "--set-details 1:mapped_blocks=3" "--set-count data:0=0" "--flip-byte $LEAF1:100"; do
	O=$(fresh basic); "$DMG" --leak data 1 --set-sb-field flags=1 $d "$O" >/dev/null
	cp "$O" "$WORK/before.bin"
	expect_rc 1 "$CHK" --auto-repair "$O"; assert_same "$O" "$WORK/before.bin"
	expect_rc 1 "$CHK" --clear-needs-check-flag "$O"; assert_same "$O" "$WORK/before.bin"
done

# bad input: one line on stderr, exit 1
expect_rc 1 "$CHK" "$WORK/missing"; assert_contains "$WORK/err" "Couldn't find input file"
expect_rc 1 "$CHK" "$WORK"; assert_contains "$WORK/err" "Not a block device or regular file"
printf 'abc' >"$WORK/tiny"; expect_rc 1 "$CHK" "$WORK/tiny"; assert_contains "$WORK/err" "too small"
head -c 3000 "$WORK/pool.xml" >"$WORK/small.xml"
expect_rc 1 "$CHK" "$WORK/small.xml"; assert_contains "$WORK/err" "too small"
expect_rc 1 "$CHK" "$WORK/pool.xml"; assert_contains "$WORK/err" "This looks like XML"
[ "$(wc -l <"$WORK/err")" = 1 ] || die "more than one line for XML input"
truncate -s 1M "$WORK/zero.bin"
expect_rc 1 "$CHK" "$WORK/zero.bin"; assert_contains "$WORK/err" "all zeroes: not thin metadata"
head -c 1M /dev/urandom >"$WORK/random.bin"
expect_rc 1 "$CHK" "$WORK/random.bin"; assert_contains "$WORK/err" "not thin metadata?"
expect_rc 1 "$CHK" -m "$(fresh basic)"; assert_contains "$WORK/err" "no current metadata snap"

# usage errors: exit 2
expect_rc 2 "$CHK"; assert_contains "$WORK/err" "No input file provided"
expect_rc 2 "$CHK" --no-such-option "$B"; assert_contains "$WORK/err" "unrecognised option"
expect_rc 2 "$CHK" -x "$B"
expect_rc 2 "$CHK" "$B" "$B"
expect_rc 2 "$CHK" --override-mapping-root; assert_contains "$WORK/err" "needs an argument"
expect_rc 2 "$CHK" --override-mapping-root abc "$B"; assert_contains "$WORK/err" "bad block number"
expect_rc 2 "$CHK" --auto-repair --ignore-non-fatal-errors "$B"
expect_rc 2 "$CHK" --auto-repair --skip-mappings "$B"
expect_rc 2 "$CHK" --auto-repair --super-block-only "$B"
expect_rc 2 "$CHK" --auto-repair -m "$B"
expect_rc 2 "$CHK" --clear-needs-check-flag -m "$B"
expect_rc 2 "$CHK" --clear-needs-check-flag --override-details-root 5 "$B"
expect_rc 2 "$CHK" --super-block-only --skip-mappings "$B"
expect_rc 0 "$CHK" --help; assert_contains "$WORK/out" "Usage: thin_check"
expect_rc 0 "$CHK" -V; [ "$(cat "$WORK/out")" = "$(sed -n 's/.*THINMETA_VERSION "\(.*\)"/\1/p' "$TOP/lib/util/cli.h")" ] || die "bad version"
# allowed combinations (Rust keeps them for compatibility)
expect_rc 0 "$CHK" --clear-needs-check-flag --skip-mappings "$(fresh basic)"
expect_rc 0 "$CHK" --clear-needs-check-flag --super-block-only "$(fresh basic)"
# overrides: the real roots give a clean tree check
MR=$(q --info "$B" | sed -n 's/^data_mapping_root=//p')
expect_rc 0 "$CHK" --override-mapping-root "$MR" --override-details-root "$DROOT" "$B"
expect_rc 1 "$CHK" --override-mapping-root "$DROOT" "$B"
note "verdicts: case, ours, 0.9.0, 1.1.0 (exit status plain/--ignore-non-fatal-errors), level"
cat "$VERDICTS"
# Where 1.1.0's verdict (pass or fail, plain or --ignore-non-fatal-errors)
# differs from ours; docs/reference-1x.md says which is right and why for
# each.  A new disagreement, or one that went away, fails the test.
cat > "$WORK/expect1x" <<EOF
basic: --set-sb-field blocknr=5
basic: --set-sb-field magic=1
basic: --set-sb-field incompat_flags=1
basic: --set-sb-field metadata_block_size=16
basic: --set-sb-field data_block_size=100
basic: --set-sb-field metadata_sm_nr_blocks=4161601
basic: --set-sb-field metadata_sm_nr_blocks=$((MB + 1))
basic: --set-node-value $LEAF1:0=$(( (NR_DATA << 24) | (V & 0xffffff) ))
basic: --set-node-key $DINDEX:0=5
basic: --leak data 1 --set-sb-field data_nr_blocks=4090
EOF
awk -F'\t' '{ split($2, o, "/"); split($4, r, "/");
	if ((o[1] != 0) != (r[1] != 0) || (o[2] != 0) != (r[2] != 0)) print $1 }' "$VERDICTS" > "$WORK/disagree1x"
assert_same "$WORK/expect1x" "$WORK/disagree1x"
note "$(wc -l < "$VERDICTS") damage cases, $(wc -l < "$WORK/disagree1x") verdicts differ from 1.1.0's (documented)"
echo "check_damage: all cases passed"
