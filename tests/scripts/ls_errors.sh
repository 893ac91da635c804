#!/usr/bin/env bash
# thin_ls: command line and bad input.  Usage errors exit 2 (unknown field
# included), every other failure 1 with one line on stderr.
source "$TOP/tests/lib.sh"
T=$BIN/thin_ls
md=$(fixture_copy snapshots)

expect_rc 0 $T --help; assert_contains "$WORK/out" "Usage: thin_ls"
assert_contains "$WORK/out" "HIGHEST_MAPPED"
expect_rc 0 $T -V; [ -s "$WORK/out" ] || die "-V printed nothing"
expect_rc 2 $T --bogus "$md"; assert_contains "$WORK/err" "Usage:"
expect_rc 2 $T; assert_contains "$WORK/err" "No input file provided."
expect_rc 2 $T -o; assert_contains "$WORK/err" "Usage:"
expect_rc 2 $T "$md" "$md"
expect_rc 2 $T -o DEV,BOGUS "$md"; assert_contains "$WORK/err" "unknown field 'BOGUS'"
expect_rc 2 $T -o DEV,,MAPPED "$md"; assert_contains "$WORK/err" "unknown field ''"
expect_rc 2 $T -o dev "$md"; assert_contains "$WORK/err" "unknown field 'dev'"
expect_rc 2 $T -m=x "$md"

expect_rc 1 $T "$WORK/nonexistent"; assert_contains "$WORK/err" "Couldn't find input file"
expect_rc 1 $T "$WORK"; assert_contains "$WORK/err" "Not a block device or regular file"
head -c 100 /dev/zero > "$WORK/tiny"
expect_rc 1 $T "$WORK/tiny"; assert_contains "$WORK/err" "too small"
{ /usr/sbin/thin_dump "$md"; printf "%5000s\n" ""; } > "$WORK/x.xml"   # >= 4 KiB
expect_rc 1 $T "$WORK/x.xml"; assert_contains "$WORK/err" "This looks like XML"
head -c 1M /dev/zero > "$WORK/zero"
expect_rc 1 $T "$WORK/zero"; assert_contains "$WORK/err" "superblock"
[ "$(wc -l < "$WORK/err")" = 1 ] || die "more than one line on stderr"
expect_rc 1 $T -m "$md"; assert_contains "$WORK/err" "no current metadata snap"
expect_rc 1 $T -m=1 "$md"; assert_contains "$WORK/err" "metadata snapshot at block 1"

# a damaged leaf: fields that need the mappings fail, details-only ones do not
[ -x "$DEVBIN/thin_damage" ] || die "$DEVBIN/thin_damage not built"
leaf=$("$DEVBIN/thin_damage" --leaf-of 1 "$md")
"$DEVBIN/thin_damage" --flip-byte "$leaf:100" "$md"
expect_rc 1 $T -o DEV,EXCLUSIVE_BLOCKS "$md"
assert_contains "$WORK/err" "thin device 1: node $leaf: bad checksum"
[ ! -s "$WORK/out" ] || die "partial table printed on failure"
expect_rc 1 $T -o DEV,HIGHEST_BLOCK "$md"
expect_rc 0 $T -o DEV,MAPPED_BLOCKS,TRANSACTION "$md"
assert_contains "$WORK/out" "DEV MAPPED_BLOCKS TRANSACTION"

# mappings beyond the data device: the first one is named, the walk finishes, exit 1
md=$(fixture_copy snapshots)
leaf=$("$DEVBIN/thin_damage" --leaf-of 1 "$md")
nr_data=$("$DEVBIN/thin_damage" --info "$md" | sed -n 's/^data_nr_blocks=//p')
k1=$("$DEVBIN/thin_damage" --get-node-key "$leaf:1" "$md")
"$DEVBIN/thin_damage" --set-node-value "$leaf:1=$(( nr_data << 24 ))" \
	--set-node-value "$leaf:2=$(( (nr_data + 5) << 24 ))" "$md"
expect_rc 1 $T -o DEV,EXCLUSIVE_BLOCKS,SHARED_BLOCKS "$md"
assert_contains "$WORK/err" "thin device 1: block $k1 maps to data block $nr_data beyond the data device ($nr_data blocks)"
[ "$(wc -l < "$WORK/err")" = 1 ] || die "more than one line on stderr"
[ ! -s "$WORK/out" ] || die "partial table printed on failure"
expect_rc 0 $T -o DEV,MAPPED_BLOCKS "$md"   # details only: no walk

# an underfull leaf (20 of 252 entries, otherwise sound): the memoising walk
# gives up on it and the path walk counts everything again from nothing;
# exclusive and shared are those of the pool's own mappings (thin_dump's XML)
"$DEVBIN/gen_pool" --scale small --seed 2 --binary -o "$WORK/uf.bin" >/dev/null
leaf=$("$DEVBIN/thin_damage" --leaf-of 1:1 "$WORK/uf.bin")
"$DEVBIN/thin_damage" --set-node-field "$leaf:nr_entries=20" "$WORK/uf.bin"
expect_rc 0 "$BIN/thin_dump" "$WORK/uf.bin"; cp "$WORK/out" "$WORK/uf.xml"
expect_rc 0 $T --no-headers -o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS "$WORK/uf.bin"
python3 - "$WORK/uf.xml" "$WORK/out" <<'PY' || die "thin_ls counts after the walk started again"
import sys, xml.etree.ElementTree as ET
refs, devs = {}, []
for d in ET.parse(sys.argv[1]).getroot().findall('device'):
    blocks = []
    for m in d:
        if m.tag == 'single_mapping':
            blocks.append(int(m.get('data_block')))
        else:
            b = int(m.get('data_begin'))
            blocks.extend(range(b, b + int(m.get('length'))))
    for b in blocks:
        refs[b] = refs.get(b, 0) + 1
    devs.append((int(d.get('dev_id')), int(d.get('mapped_blocks')), blocks))
want = []
for dev, details, blocks in devs:   # MAPPED_BLOCKS is the details' count
    excl = sum(1 for b in blocks if refs[b] == 1)
    want.append([dev, details, excl, len(blocks) - excl])
got = [[int(x) for x in l.split()] for l in open(sys.argv[2]) if l.strip()]
assert len(want) > 2 and got == want, (got, want)
PY

# -m on the fixture that holds a snapshot; explicit block = the one recorded
md=$(fixture_copy held_root)
expect_rc 0 $T -m -o DEV,MAPPED_BLOCKS "$md"; cp "$WORK/out" "$WORK/m1"
held=$("$DEVBIN/thin_damage" --info "$md" | sed -n "s/^held_root=//p")
[ -n "$held" ] && [ "$held" != 0 ] || die "no held_root in thin_damage --info"
expect_rc 0 $T --metadata-snap=$held -o DEV,MAPPED_BLOCKS "$md"
assert_same "$WORK/m1" "$WORK/out"
echo "errors ok"
