#!/usr/bin/env bash
# thin_check: the data space map's ref count tree (counts of 3 and more)
# against the counts walked.  Each leaf's counts are read for its whole key
# span at once (check_sm.c ovf_leaf); these cases take that path and the
# one entry at a time (a span too wide), and each must be reported as before.
source "$TOP/tests/lib.sh"
T=$BIN/thin_check
TD=$DEVBIN/thin_damage
[ -x "$TD" ] || die "$TD not built"
src=$WORK/snaps.bin
"$DEVBIN/gen_pool" --origins 3 --snapshots 40 --mappings 200000 --seed 7 --binary -o "$src" >/dev/null 2>&1 ||
	die "gen_pool failed"
expect_rc 0 $T -q "$src"

# the data space map root (FORMAT.md: superblock offset 64) holds ref_count_root at +24
root=$(od -An -t u8 -j 88 -N 8 "$src" | tr -d ' ')
$TD --node-info "$root" "$src" | grep -q flags=1 || die "ref count tree root $root is not internal"
leaf=$($TD --get-node-value "$root:1" "$src")
nr=$($TD --node-info "$leaf" "$src" | sed -n 's/nr_entries=//p')
[ "$nr" -gt 100 ] || die "ref count leaf $leaf has $nr entries"
key() { $TD --get-node-key "$leaf:$1" "$src"; }
val() { $TD --get-node-value "$leaf:$1" "$src"; }

# 1. a count one too high, in the middle of the span
md=$WORK/plus1.bin; cp "$src" "$md"
k=$(key 5); v=$(val 5)
$TD --set-node-value "$leaf:5=$((v + 1))" "$md" >/dev/null
expect_rc 1 $T "$md"
assert_contains "$WORK/err" "data block $k: reference count on disk $((v + 1)), expected $v"

# 2. a count below 3 in the tree, for a block walked 3 or more times
md=$WORK/two.bin; cp "$src" "$md"
$TD --set-node-value "$leaf:0=2" "$md" >/dev/null
expect_rc 1 $T "$md"
assert_contains "$WORK/err" "ref count tree entries are below 3"

# 3. a count below 3 equal to the count walked: block b (free, in the gap
#    before entry i) takes entry i's place with a count of 0 and a bitmap
#    entry of 3
#    (the first leaf of the tree with a gap in its keys; the blocks in it)
python3 - "$src" "$root" > "$WORK/gaps" <<'PY'
import struct, sys
f = open(sys.argv[1], 'rb')
def node(b):
    f.seek(b * 4096); d = f.read(4096)
    flags, blocknr, nr, mx, vs = struct.unpack_from('<IQIII', d, 4)
    return flags, [struct.unpack_from('<Q', d, 32 + 8 * i)[0] for i in range(nr)], \
        [struct.unpack_from('<Q', d, 32 + 8 * mx + vs * i)[0] for i in range(nr)] if vs == 8 else []
_, _, kids = node(int(sys.argv[2]))
for leaf in kids:
    flags, keys, _ = node(leaf)
    for i in range(1, len(keys) - 1):
        if keys[i + 1] - keys[i - 1] > 2:
            for b in range(keys[i - 1] + 1, keys[i + 1]):
                if b != keys[i]:
                    print(leaf, i, b)
            sys.exit(0)
PY
[ -s "$WORK/gaps" ] || die "no gap in the keys of the ref count tree's leaves"
"$BIN/thin_rmap" --region "$(head -1 "$WORK/gaps" | cut -d' ' -f3)..$(($(tail -1 "$WORK/gaps" | cut -d' ' -f3) + 1))" "$src" > "$WORK/rmap" ||
	die "thin_rmap failed"
pick=""
while read -r _ i b; do
	n=$(awk -v b="$b" '{ split($2, r, "[.]+"); if (b >= r[1] && b < r[2]) n++ } END { print n + 0 }' "$WORK/rmap")
	if [ "$n" = 0 ]; then pick="$i $b"; break; fi
done < "$WORK/gaps"
[ -n "$pick" ] || die "no free block in the gap"
read -r i b <<< "$pick"
gleaf=$(head -1 "$WORK/gaps" | cut -d' ' -f1)
md=$WORK/equal2.bin; cp "$src" "$md"
$TD --set-node-key "$gleaf:$i=$b" --set-node-value "$gleaf:$i=0" --set-bitmap-entry "data:$b=3" "$md" >/dev/null
expect_rc 1 $T "$md"
assert_contains "$WORK/err" "ref count tree entries are below 3"

# 4. the last key moved 3,000 blocks on: a span too wide, entry by entry
md=$WORK/span.bin; cp "$src" "$md"
last=$((nr - 1)); lk=$(key $last)
$TD --set-node-key "$leaf:$last=$((lk + 3000))" "$md" >/dev/null
expect_rc 1 $T "$md"
assert_contains "$WORK/err" "ref count not in tree for block $lk"
