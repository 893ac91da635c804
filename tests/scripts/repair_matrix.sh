#!/bin/bash
# thin_repair damage matrix: kernel fixtures and a generated pool, each
# damaged one way at a time.  For every case our repair must succeed (or
# fail with the documented message), its output must pass our thin_check
# and 0.9.0's, it must not invent mappings, every original mapping it does
# not return must lie in a range it reported lost, and the output must not
# use more metadata blocks than the input.  The reference thin_repair runs
# on the same damage for comparison.  REPAIR_MATRIX_MD=FILE writes the
# comparison table (docs/repair-matrix.md).
source "$TOP/tests/lib.sh"
need_ref0
need_ref1

DMG=$DEVBIN/thin_damage
REF=/usr/sbin
MDOUT=${REPAIR_MATRIX_MD:-}
ROWS=$WORK/rows
: > "$ROWS"

cat > "$WORK/cmp.py" <<'EOF'
import re, sys
def load(path):
    m = {}
    dev = None
    for line in open(path):
        g = re.search(r'<device dev_id="(\d+)"', line)
        if g:
            dev = int(g.group(1)); m.setdefault(dev, set()); continue
        g = re.search(r'single_mapping origin_block="(\d+)" data_block="(\d+)" time="(\d+)"', line)
        if g:
            o, d, t = map(int, g.groups()); m[dev].add((o, d, t)); continue
        g = re.search(r'range_mapping origin_begin="(\d+)" data_begin="(\d+)" length="(\d+)" time="(\d+)"', line)
        if g:
            o, d, n, t = map(int, g.groups())
            for i in range(n):
                m[dev].add((o + i, d + i, t))
    return m
orig, out = load(sys.argv[1]), load(sys.argv[2])
total = sum(len(s) for s in orig.values())
got = sum(len(s & orig.get(d, set())) for d, s in out.items())
if len(sys.argv) > 3:
    lost = {}
    devs_lost = []
    for line in open(sys.argv[3]):
        g = re.match(r'device (\d+): mappings (?:may be )?lost in virtual blocks \[(\d+), (\d+|end)\)', line)
        if g:
            hi = (1 << 64) if g.group(3) == 'end' else int(g.group(3))
            lost.setdefault(int(g.group(1)), []).append((int(g.group(2)), hi))
        g = re.match(r'top-level mapping tree damaged: devices with ids in \[(\d+), (\d+)\)', line)
        if g:
            devs_lost.append((int(g.group(1)), int(g.group(2))))
    for d, s in out.items():
        extra = s - orig.get(d, set())
        if extra:
            print("FAIL: device %d: %d mappings not in the input, e.g. %s" % (d, len(extra), sorted(extra)[:3]))
            sys.exit(1)
    for d, s in orig.items():
        missing = s - out.get(d, set())
        if d not in out and any(lo <= d < hi for lo, hi in devs_lost):
            continue
        for (o, _, _) in missing:
            if not any(lo <= o < hi for lo, hi in lost.get(d, [])):
                print("FAIL: device %d: mapping of block %d lost without a report" % (d, o))
                sys.exit(1)
print("%d/%d" % (got, total))
EOF

used_blocks() { "$DMG" --info "$1" | sed -n 's/^metadata_nr_allocated=//p'; }

# row IMAGE-NAME CASE OURS REF
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" >> "$ROWS"; }

# run_case NAME CASE DAMAGED ORIG_XML ORIG_USED "OUR ARGS" "REF ARGS" [EXPECT_FAIL_MSG]
run_case() {
	local name=$1 case=$2 img=$3 oxml=$4 oused=$5 ours=$6 refargs=$7 fail=${8:-}
	local out=$WORK/out.bin rout=$WORK/rout.bin res refres rc=0
	rm -f "$out" "$rout"
	# a spare as big as the input, as lvconvert's pmspare
	truncate -s "$(stat -c %s "$img")" "$out"
	truncate -s "$(stat -c %s "$img")" "$rout"
	# shellcheck disable=SC2086
	"$BIN/thin_repair" -i "$img" -o "$out" $ours > /dev/null 2> "$WORK/notes" || rc=$?
	if [ -n "$fail" ]; then
		[ "$rc" = 1 ] || die "$name/$case: exit $rc, expected 1"
		assert_contains "$WORK/notes" "$fail"
		res="fails: \`$fail\`"
	else
		[ "$rc" = 0 ] || { cat "$WORK/notes"; die "$name/$case: thin_repair exit $rc"; }
		"$BIN/thin_check" -q "$out" || die "$name/$case: our thin_check rejects the output"
		"$REF/thin_check" -q "$out" || die "$name/$case: 0.9.0 thin_check rejects the output"
		"$REF1/thin_check" -q "$out" || die "$name/$case: 1.1.0 thin_check rejects the output"
		same_dump_1x "$out"
		"$BIN/thin_dump" "$out" > "$WORK/out.xml"
		res=$(python3 "$WORK/cmp.py" "$oxml" "$WORK/out.xml" "$WORK/notes") ||
			{ echo "$res"; cat "$WORK/notes"; die "$name/$case: mapping check"; }
		# the restorer's space-map layout may differ from the kernel's by a few blocks
		[ "$(used_blocks "$out")" -le $((oused + 4)) ] ||
			die "$name/$case: output uses $(used_blocks "$out") blocks > input's $oused"
		res="$res, $(used_blocks "$out")/$oused blocks"
		local nl
		nl=$(grep -c 'lost in virtual blocks\|devices with ids' "$WORK/notes" || true)
		[ "$nl" = 0 ] || res="$res, $nl lost ranges reported"
		grep -q 'orphan leaves salvaged' "$WORK/notes" && res="$res, orphans salvaged"
		grep -q 'synthesised' "$WORK/notes" && res="$res, details synthesised"
	fi
	rc=0
	if [ "${THINMETA_SLOW_TESTS:-1}" = 0 ]; then
		# the reference column is documentation, not an assertion (said loudly)
		row "$name" "$case" "$res" "not run (THINMETA_SLOW_TESTS=0)"
		note "$name/$case: ours $res; 0.9.0 not run (THINMETA_SLOW_TESTS=0)"
		return
	fi
	# shellcheck disable=SC2086
	timeout 60 "$REF/thin_repair" -i "$img" -o "$rout" $refargs > /dev/null 2> "$WORK/rnotes" || rc=$?
	if [ "$rc" = 0 ] && "$REF/thin_dump" "$rout" > "$WORK/rout.xml" 2> /dev/null; then
		refres="$(python3 "$WORK/cmp.py" "$oxml" "$WORK/rout.xml"), $(used_blocks "$rout")/$oused blocks"
		"$REF/thin_check" -q "$rout" 2> /dev/null || refres="$refres (fails 0.9.0 thin_check)"
	else
		refres="fails (exit $rc): $(head -1 "$WORK/rnotes" | cut -c1-70)"
	fi
	row "$name" "$case" "$res" "$refres"
	note "$name/$case: ours $res; 0.9.0 $refres"
}

# matrix NAME IMAGE OVERRIDES: every damage case on a copy of IMAGE
# (OVERRIDES=1: also the rows where --override-mapping-root picks the state)
matrix() {
	local name=$1 img=$2 overrides=$3 oxml oused dbs tid ndb dev root leaf d stale mroot droot
	oxml=$WORK/$(echo "$name" | tr -c "a-z0-9\n" _).xml
	"$BIN/thin_dump" "$img" > "$oxml"
	oused=$(used_blocks "$img")
	dbs=$("$DMG" --info "$img" | sed -n 's/^data_block_size=//p')
	tid=$("$DMG" --info "$img" | sed -n 's/^trans_id=//p')
	ndb=$("$DMG" --info "$img" | sed -n 's/^data_nr_blocks=//p')
	mroot=$("$DMG" --info "$img" | sed -n 's/^data_mapping_root=//p')
	droot=$("$DMG" --info "$img" | sed -n 's/^device_details_root=//p')
	# the device with the most mappings
	dev=$(grep -o 'dev_id="[0-9]*" mapped_blocks="[0-9]*"' "$oxml" | tr -d '"' |
		sed 's/dev_id=\([0-9]*\) mapped_blocks=\([0-9]*\)/\2 \1/' | sort -n | tail -1 | cut -d' ' -f2)
	d=$WORK/d.bin
	local refsb="--transaction-id $tid --data-block-size $dbs --nr-data-blocks $ndb"

	cp "$img" "$d"
	run_case "$name" "healthy (copy)" "$d" "$oxml" "$oused" "" ""
	assert_same "$oxml" "$WORK/out.xml"

	cp "$img" "$d"; "$DMG" --zero-block 0 "$d"
	run_case "$name" "zeroed superblock, no overrides" "$d" "$oxml" "$oused" "" "" \
		"The following field needs to be provided on the command line due to corruption in the superblock: data block size"
	# the space maps prove the last commit (tests/scripts/repair_lost_sb.sh has the
	# matrix over every fixture and damage); the overrides still pick a state
	run_case "$name" "zeroed superblock + overrides" "$d" "$oxml" "$oused" "$refsb" "$refsb"
	assert_contains "$WORK/notes" "is the last commit"
	assert_same "$oxml" "$WORK/out.xml"
	if [ "$overrides" = 1 ]; then
		run_case "$name" "zeroed superblock + overrides + --override-mapping-root/--override-details-root" \
			"$d" "$oxml" "$oused" "$refsb --override-mapping-root $mroot --override-details-root $droot" "$refsb"
		assert_same "$oxml" "$WORK/out.xml"
		run_case "$name" "zeroed superblock + overrides + --override-mapping-root" \
			"$d" "$oxml" "$oused" "$refsb --override-mapping-root $mroot" "$refsb"
		assert_same "$oxml" "$WORK/out.xml"
	fi

	# ... and a leaf of the live trees: the live state is damaged, an older whole
	# one must not be taken for it
	cp "$img" "$d"
	"$DMG" --zero-block 0 --zero-block "$("$DMG" --leaf-of "$dev" "$img")" "$d"
	run_case "$name" "zeroed superblock and a leaf of dev $dev + overrides" "$d" "$oxml" "$oused" \
		"$refsb" "$refsb" "the last commit (space-map index"
	assert_contains "$WORK/notes" "holds nothing readable"

	stale=$("$DMG" --find-nodes top "$img" | head -1)
	if [ -n "$stale" ]; then
		cp "$img" "$d"; "$DMG" --set-sb-field "data_mapping_root=$stale" "$d"
		run_case "$name" "stale mapping root in superblock" "$d" "$oxml" "$oused" "" ""
		grep -q "searching for roots" "$WORK/notes" || die "$name: stale root not noticed"
	fi

	cp "$img" "$d"
	"$DMG" --zero-block "$("$DMG" --info "$d" | sed -n 's/^device_details_root=//p')" "$d"
	run_case "$name" "details root zeroed" "$d" "$oxml" "$oused" "" ""

	cp "$img" "$d"
	"$DMG" --zero-block "$("$DMG" --info "$d" | sed -n 's/^data_mapping_root=//p')" "$d"
	run_case "$name" "top-level mapping root zeroed" "$d" "$oxml" "$oused" "" ""

	cp "$img" "$d"
	root=$("$DMG" --dev-root "$dev" "$d")
	leaf=$("$DMG" --leaf-of "$dev:1" "$d" 2> /dev/null || "$DMG" --leaf-of "$dev" "$d")
	"$DMG" --zero-block "$leaf" "$d"
	run_case "$name" "leaf of dev $dev zeroed" "$d" "$oxml" "$oused" "" ""
	assert_contains "$WORK/notes" "device $dev: mappings lost in virtual blocks"

	cp "$img" "$d"
	"$DMG" --set-node-key "$leaf:0=999999999" "$d"
	run_case "$name" "leaf keys of dev $dev out of order (checksum ok)" "$d" "$oxml" "$oused" "" ""

	if "$DMG" --node-info "$root" "$img" | grep -q '^flags=1'; then
		cp "$img" "$d"; "$DMG" --zero-block "$root" "$d"
		run_case "$name" "internal root of dev $dev zeroed" "$d" "$oxml" "$oused" "" ""
		assert_contains "$WORK/notes" "orphan leaves salvaged"
	fi

	cp "$img" "$d"
	"$DMG" --zero-block "$("$DMG" --info "$d" | sed -n 's/^metadata_bitmap_root=//p')" "$d"
	run_case "$name" "metadata space-map index zeroed" "$d" "$oxml" "$oused" "" ""
	assert_same "$oxml" "$WORK/out.xml"

	cp "$img" "$d"
	"$DMG" --zero-block "$("$DMG" --info "$d" | sed -n 's/^data_bitmap_root=//p')" "$d"
	run_case "$name" "data space-map index zeroed" "$d" "$oxml" "$oused" "" ""
	assert_same "$oxml" "$WORK/out.xml"

	cp "$img" "$d"
	"$DMG" --leak metadata 3 --leak data 3 "$d" > /dev/null
	run_case "$name" "3 metadata + 3 data blocks leaked" "$d" "$oxml" "$oused" "" ""
	assert_same "$oxml" "$WORK/out.xml"
}

for f in basic:1 snapshots:0 deleted:1 resized:1 held_root:1; do
	matrix "kernel/${f%:*}" "$(fixture_copy "${f%:*}")" "${f#*:}"
done

"$DEVBIN/gen_pool" --scale small --seed 3 -o "$WORK/gen.xml" > /dev/null
truncate -s 64M "$WORK/gen.bin"
"$BIN/thin_restore" -i "$WORK/gen.xml" -o "$WORK/gen.bin"
matrix "generated small (100k mappings)" "$WORK/gen.bin" 0

# nothing recoverable
truncate -s 1M "$WORK/empty.bin"
expect_rc 1 "$BIN/thin_repair" -i "$WORK/empty.bin" -o "$WORK/out.bin" --data-block-size 128
assert_contains "$WORK/err" "no compatible roots found"
# usage: stray positional argument (lvconvert) accepted, two rejected, missing -o
cp "$(fixture_copy basic)" "$WORK/b.bin"
expect_rc 0 "$BIN/thin_repair" -i "$WORK/b.bin" -o "$WORK/out.bin" stray
"$BIN/thin_dump" "$WORK/out.bin" | head -1 > "$WORK/first"
assert_contains "$WORK/first" 'transaction="1"'
expect_rc 2 "$BIN/thin_repair" -i "$WORK/b.bin" -o "$WORK/out.bin" a b
expect_rc 2 "$BIN/thin_repair" -i "$WORK/b.bin"
expect_rc 1 "$BIN/thin_repair" -i "$WORK/b.bin" -o "$WORK/b.bin"
assert_contains "$WORK/err" "is the input"
expect_rc 1 "$BIN/thin_repair" -i "$WORK/b.bin" -o "$WORK/out.bin" --data-block-size 100
# overrides on a healthy input; -q is silent
expect_rc 0 "$BIN/thin_repair" -q -i "$WORK/b.bin" -o "$WORK/out.bin" --transaction-id 2345 --data-block-size 8192
[ ! -s "$WORK/err" ] || die "-q printed something"
"$BIN/thin_dump" "$WORK/out.bin" | head -1 > "$WORK/first"
assert_contains "$WORK/first" 'transaction="2345"'
assert_contains "$WORK/first" 'data_block_size="8192"'
# thin_dump --repair emits the same content as thin_repair writes
"$DMG" --zero-block "$("$DMG" --leaf-of 1 "$WORK/b.bin")" "$WORK/b.bin"
expect_rc 0 "$BIN/thin_repair" -i "$WORK/b.bin" -o "$WORK/out.bin"
"$BIN/thin_dump" "$WORK/out.bin" > "$WORK/a.xml"
expect_rc 0 "$BIN/thin_dump" --repair "$WORK/b.bin"
assert_same "$WORK/a.xml" "$WORK/out"
assert_contains "$WORK/err" "device 1: mappings lost in virtual blocks"
expect_rc 2 "$BIN/thin_dump" --repair -m "$WORK/b.bin"

if [ -n "$MDOUT" ]; then
	{
		echo "Each row damages a copy of the image one"
		echo "way (with tests/tools/thin_damage) and runs our thin_repair and 0.9.0's on it."
		echo "\"N/M\" = mappings of the undamaged pool found in the repaired output; \"U/V blocks\" = metadata blocks used by the output / by the input.  Our"
		echo "outputs pass our thin_check and 0.9.0's, hold no mapping that was not in the"
		echo "input, report every range they lose, and use no more metadata blocks than the"
		echo "input.  0.9.0 gets the superblock overrides only in the \"+ overrides\" rows."
		echo
		cat <<'TXT'
Superblock lost: the scan also finds the metadata space maps (index block
and bitmaps); each is a committed pool state.  The live one is the last
commit, and thin_repair uses a state only when the disk proves it is: no
block it had free was written since where the next commit would have
written first (the lowest block it had free, and the blocks above its own
space-map index; what is there is either never written or an older state's
space map).  A last commit that marks unreadable blocks in use is damaged:
refused, listing it with the command line that picks it (rows "zeroed
superblock and a leaf"); older states are never taken for it.  The matrix
over every kernel fixture and four kinds of damage, with 1.1.0 too, is
tests/scripts/repair_lost_sb.sh (below).

Top-level mapping tree lost: the orphan device trees are matched to the
details by mapped_blocks; the space map's reference counts of the
candidate roots must add up to the devices claiming them; older pool
states rule out candidates (a device's live tree has no mapping older than
such a state's clock that its tree there lacks); devices still left with
several candidate trees keep the mappings all of them share and report the
rest lost (kernel/snapshots: devices 1 and 3 differ only by mappings
stamped with the last snapshot's time).
TXT
		echo
		echo "| image | damage | thinmeta thin_repair | 0.9.0 thin_repair |"
		echo "|---|---|---|---|"
		cat "$ROWS"
	} > "$MDOUT"
fi
