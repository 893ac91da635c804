#!/bin/bash
# thin_repair must not guess: two devices with the same mapped count lose
# their top-level tree -> neither gets a tree (both reported lost), the
# device with a unique count is recovered; a zeroed superblock over a
# history of equally recent states: the space maps prove the last commit,
# and an unproven one is refused with the candidates and their command lines.
source "$TOP/tests/lib.sh"

DMG=$DEVBIN/thin_damage

{
	echo '<superblock uuid="" time="1" transaction="4" flags="0" version="2" data_block_size="128" nr_data_blocks="4096">'
	echo '  <device dev_id="1" mapped_blocks="40" transaction="1" creation_time="0" snap_time="0">'
	echo '    <range_mapping origin_begin="0" data_begin="0" length="40" time="0"/>'
	echo '  </device>'
	echo '  <device dev_id="2" mapped_blocks="40" transaction="2" creation_time="0" snap_time="0">'
	echo '    <range_mapping origin_begin="100" data_begin="1000" length="40" time="1"/>'
	echo '  </device>'
	echo '  <device dev_id="3" mapped_blocks="7" transaction="3" creation_time="1" snap_time="1">'
	echo '    <range_mapping origin_begin="5" data_begin="2000" length="7" time="1"/>'
	echo '  </device>'
	echo '</superblock>'
} > "$WORK/in.xml"
truncate -s 4M "$WORK/md.bin"
"$BIN/thin_restore" -i "$WORK/in.xml" -o "$WORK/md.bin"
"$BIN/thin_dump" "$WORK/md.bin" > "$WORK/orig.xml"
cp "$WORK/md.bin" "$WORK/d.bin"
"$DMG" --zero-block "$("$DMG" --info "$WORK/d.bin" | sed -n 's/^data_mapping_root=//p')" "$WORK/d.bin"
truncate -s 4M "$WORK/out.bin"
expect_rc 0 "$BIN/thin_repair" -i "$WORK/d.bin" -o "$WORK/out.bin"
assert_contains "$WORK/err" "device 1: no unique mapping tree with 40 mappings: lost"
assert_contains "$WORK/err" "device 2: no unique mapping tree with 40 mappings: lost"
assert_contains "$WORK/err" "device 1: mappings lost in virtual blocks [0, end)"
assert_contains "$WORK/err" "device 2: mappings lost in virtual blocks [0, end)"
"$BIN/thin_check" -q "$WORK/out.bin" || die "our thin_check rejects the output"
"$BIN/thin_dump" "$WORK/out.bin" > "$WORK/out.xml"
# no mapping invented: devices 1 and 2 are empty, device 3 is whole
python3 - "$WORK/orig.xml" "$WORK/out.xml" <<'PY' || die "mapping check"
import re, sys
def load(p):
    m, dev = {}, None
    for line in open(p):
        g = re.search(r'<device dev_id="(\d+)"', line)
        if g:
            dev = int(g.group(1)); m[dev] = set(); continue
        g = re.search(r'range_mapping origin_begin="(\d+)" data_begin="(\d+)" length="(\d+)" time="(\d+)"', line)
        if g:
            o, d, n, t = map(int, g.groups()); m[dev] |= {(o + i, d + i, t) for i in range(n)}
        g = re.search(r'single_mapping origin_block="(\d+)" data_block="(\d+)" time="(\d+)"', line)
        if g:
            m[dev].add(tuple(map(int, g.groups())))
    return m
o, r = load(sys.argv[1]), load(sys.argv[2])
for d, s in r.items():
    assert s <= o.get(d, set()), "device %d got mappings it did not own" % d
assert not r.get(1) and not r.get(2), "an ambiguous device got a tree"
assert r.get(3) == o[3], "device 3 not recovered"
print("ok")
PY

# a history of equally recent states (the kernel fixture `deleted` has devices
# deleted after the last snapshot): nothing in the devices orders them, the
# space maps do: the last commit is chosen, and one line says why
cp "$(fixture_copy deleted)" "$WORK/del.bin"
mroot=$("$DMG" --info "$WORK/del.bin" | sed -n 's/^data_mapping_root=//p')
droot=$("$DMG" --info "$WORK/del.bin" | sed -n 's/^device_details_root=//p')
"$BIN/thin_dump" "$WORK/del.bin" | sed '1s/ time="[0-9]*"//' > "$WORK/del.xml"
"$DMG" --zero-block 0 "$WORK/del.bin"
expect_rc 0 "$BIN/thin_repair" -i "$WORK/del.bin" -o "$WORK/out.bin" --data-block-size 128 \
	--transaction-id 3 --nr-data-blocks 4096
assert_contains "$WORK/err" "pool state mapping root $mroot details root $droot"
assert_contains "$WORK/err" "is the last commit: no block it had free was written since"
[ "$(grep -c "is the last commit" "$WORK/err")" = 1 ] || die "one line says which evidence decided"
"$BIN/thin_dump" "$WORK/out.bin" | sed '1s/ time="[0-9]*"//' > "$WORK/out.xml"
assert_same "$WORK/out.xml" "$WORK/del.xml"
# blocks above it that no commit accounts for (an orphan tree planted there, or
# what an aborted transaction wrote) are no newer commit: still chosen
cp "$(fixture_copy deleted)" "$WORK/del2.bin"
"$DMG" --plant-newer-tree --zero-block 0 "$WORK/del2.bin" > /dev/null
expect_rc 0 "$BIN/thin_repair" -i "$WORK/del2.bin" -o "$WORK/out.bin" --data-block-size 128 \
	--transaction-id 3 --nr-data-blocks 4096
"$BIN/thin_dump" "$WORK/out.bin" | sed '1s/ time="[0-9]*"//' > "$WORK/out.xml"
assert_same "$WORK/out.xml" "$WORK/del.xml"
# a space-map index above it (a copy of an older one put there) may be a newer
# commit's: refused, the live state listed first with the command line that picks it
cp "$(fixture_copy deleted)" "$WORK/del2.bin"
"$DMG" --copy-block 141:149 --zero-block 0 "$WORK/del2.bin"
expect_rc 1 "$BIN/thin_repair" -i "$WORK/del2.bin" -o "$WORK/out.bin" --data-block-size 128
assert_contains "$WORK/err" "no pool state is proven to be the last commit"
assert_contains "$WORK/err" "candidate 1: mapping root $mroot details root $droot"
assert_contains "$WORK/err" "block 149, which it had free, holds a space-map index"
assert_contains "$WORK/err" "thin_repair -i $WORK/del2.bin -o $WORK/out.bin --data-block-size 128 --override-mapping-root $mroot --override-details-root $droot"
expect_rc 1 "$BIN/thin_dump" --repair --data-block-size 128 "$WORK/del2.bin"
assert_contains "$WORK/err" "candidate 1: mapping root $mroot details root $droot"
assert_contains "$WORK/err" "thin_dump --repair --data-block-size 128 --override-mapping-root $mroot --override-details-root $droot $WORK/del2.bin"
# the printed command line gives the live pool
expect_rc 0 "$BIN/thin_repair" -i "$WORK/del2.bin" -o "$WORK/out.bin" --data-block-size 128 \
	--transaction-id 3 --nr-data-blocks 4096 --override-mapping-root "$mroot" --override-details-root "$droot"
"$BIN/thin_dump" "$WORK/out.bin" | sed '1s/ time="[0-9]*"//' > "$WORK/out.xml"
assert_same "$WORK/out.xml" "$WORK/del.xml"
expect_rc 0 "$BIN/thin_dump" --repair --data-block-size 128 --transaction-id 3 --nr-data-blocks 4096 \
	--override-mapping-root "$mroot" --override-details-root "$droot" "$WORK/del2.bin"
sed '1s/ time="[0-9]*"//' "$WORK/out" > "$WORK/out.xml"
assert_same "$WORK/out.xml" "$WORK/del.xml"
expect_rc 2 "$BIN/thin_dump" --override-mapping-root "$mroot" "$WORK/del2.bin"
# a bad override value is a usage error; details without mapping root too
expect_rc 2 "$BIN/thin_repair" -i "$WORK/del.bin" -o "$WORK/out.bin" --override-mapping-root x
expect_rc 2 "$BIN/thin_repair" -i "$WORK/del.bin" -o "$WORK/out.bin" --override-details-root 5
# an override naming no tree: fails cleanly, nothing invented
expect_rc 0 "$BIN/thin_repair" -i "$WORK/del.bin" -o "$WORK/out.bin" --data-block-size 128 \
	--override-mapping-root 3 --override-details-root "$droot"
"$BIN/thin_dump" "$WORK/out.bin" > "$WORK/bad.xml"
! grep -q mapping "$WORK/bad.xml" || die "mappings from a non-tree root"
assert_contains "$WORK/err" "top-level mapping tree damaged"

# superblock lost and the live trees damaged: the last commit is proven, but a
# block it marks in use is unreadable: refused (an older state would be stale),
# the last commit listed first, and the user's roots then give the live trees
# with the damaged range lost
for f in snapshots deleted; do
	img=$(fixture_copy $f)
	mroot=$("$DMG" --info "$img" | sed -n 's/^data_mapping_root=//p')
	droot=$("$DMG" --info "$img" | sed -n 's/^device_details_root=//p')
	dev=$("$BIN/thin_dump" "$img" | sed -n 's/.*<device dev_id="\([0-9]*\)" mapped_blocks="[1-9].*/\1/p' | head -1)
	leaf=$("$DMG" --leaf-of "$dev" "$img")
	cp "$img" "$WORK/z.bin"
	"$DMG" --zero-block 0 --zero-block "$leaf" "$WORK/z.bin"
	expect_rc 1 "$BIN/thin_repair" -i "$WORK/z.bin" -o "$WORK/out.bin" --data-block-size 128
	assert_contains "$WORK/err" "is damaged: 1 block it marks in use holds nothing readable (first $leaf)"
	assert_contains "$WORK/err" "candidate 1: mapping root $mroot details root $droot"
	assert_contains "$WORK/err" "the last commit, damaged"
	assert_contains "$WORK/err" "--override-mapping-root $mroot --override-details-root $droot"
	# older states are marked stale
	! grep "^candidate [2-9]" "$WORK/err" | grep -qv "older than the last commit (stale)" ||
		die "$f: an older state not marked stale"
	expect_rc 0 "$BIN/thin_repair" -i "$WORK/z.bin" -o "$WORK/out.bin" --data-block-size 128 \
		--override-mapping-root "$mroot" --override-details-root "$droot"
	assert_contains "$WORK/err" "device $dev: mappings lost in virtual blocks"
	"$BIN/thin_check" -q "$WORK/out.bin" || die "$f: our thin_check rejects the output"
	# only the zeroed leaf's mappings are missing
	"$BIN/thin_dump" "$img" | grep -c mapping > "$WORK/n0"
	"$BIN/thin_dump" "$WORK/out.bin" | grep -c mapping > "$WORK/n1"
	[ "$(cat "$WORK/n1")" -lt "$(cat "$WORK/n0")" ] || die "$f: nothing lost?"
	# the whole pool without the superblock is not refused for damage
	cp "$img" "$WORK/z.bin"
	"$DMG" --zero-block 0 "$WORK/z.bin"
	"$BIN/thin_repair" -i "$WORK/z.bin" -o "$WORK/out.bin" --data-block-size 128 2> "$WORK/err" || true
	assert_not_contains "$WORK/err" "damaged"
done
