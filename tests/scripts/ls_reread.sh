# thin_ls's fast walk reads the leaves of subtrees shared by snapshots a
# second time after the walk.  If the metadata changed in between (a live
# pool committing under a tool run on its metadata), that second read must
# be noticed and the count started again on the path walk, with the same
# answer.  tests/tools/shim/corruptshim.so flips one byte of a mapping
# value in the Nth read of a shared leaf: the 1st read (the walk itself),
# the 2nd (the second visit) and the 3rd.
source "$TOP/tests/lib.sh"
SHIM=$DEVBIN/corruptshim.so
[ -f "$SHIM" ] || die "$SHIM not built"
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0

img=$WORK/p.bin
"$DEVBIN/gen_pool" --origins 2 --snapshots 2 --mappings 60000 --seed 5 --binary -o "$img" > /dev/null
# two snapshots of device 0 share its whole tree
"$BIN/thin_edit" -q "$img" create_snap 100 0 create_snap 101 0
expect_rc 0 "$BIN/thin_check" -q "$img"
leaf=$("$DEVBIN/thin_damage" --leaf-of 0:2 "$img" | grep -Eo '^[0-9]+$')
"$DEVBIN/thin_damage" --node-info "$leaf" "$img" | grep -qx 'flags=2' || die "block $leaf is not a leaf"
# a byte of the 11th mapping's data block (values start at 32 + 8 * 252)
byte=$((32 + 8 * 252 + 8 * 10 + 3))
opts=(-o DEV,MAPPED_BLOCKS,EXCLUSIVE_BLOCKS,SHARED_BLOCKS,HIGHEST_BLOCK)
"$BIN/thin_ls" "${opts[@]}" "$img" > "$WORK/want"

reads() {   # NTH -> thin_ls's output in $WORK/got, the reads of the leaf in $WORK/count
	THINMETA_CORRUPT_BLOCK=$leaf THINMETA_CORRUPT_NTH=$1 THINMETA_CORRUPT_BYTE=$byte \
		THINMETA_CORRUPT_COUNT=$WORK/count LD_PRELOAD=$SHIM \
		"$BIN/thin_ls" "${opts[@]}" "$img" > "$WORK/got" || die "thin_ls failed (read $1 changed)"
	cat "$WORK/count"
}

n=$(reads 0)
note "the fast walk reads leaf $leaf $n times (the walk, the second visit)"
[ "$n" = 2 ] || die "leaf $leaf read $n times, expected 2: the test no longer reaches the second visit"
assert_same "$WORK/want" "$WORK/got"

n=$(reads 2)
note "second read changed: $n reads (the path walk read it again)"
[ "$n" = 3 ] || die "a changed second read was not noticed ($n reads, expected 3)"
assert_same "$WORK/want" "$WORK/got"

n=$(reads 1)
note "first read changed: $n reads"
[ "$n" = 2 ] || die "a bad leaf in the walk should end the fast walk at once ($n reads, expected 2)"
assert_same "$WORK/want" "$WORK/got"

n=$(reads 3)
[ "$n" = 2 ] || die "the third read should never happen on sound metadata ($n reads)"
assert_same "$WORK/want" "$WORK/got"
