#!/usr/bin/env bash
# thin_delta: command line (exit 2, 0.9.0's "--snap1 not specified."
# messages) and bad input (exit 1, one line on stderr).
source "$TOP/tests/lib.sh"
T=$BIN/thin_delta
md=$(fixture_copy snapshots)

expect_rc 0 $T --help; assert_contains "$WORK/out" "--thin1, --snap1"
expect_rc 0 $T -V; [ -s "$WORK/out" ] || die "-V printed nothing"
expect_rc 2 $T --bogus "$md"; assert_contains "$WORK/err" "Usage:"
expect_rc 2 $T --snap1 0 --snap2 1; assert_contains "$WORK/err" "No input device provided."
expect_rc 2 $T "$md"; assert_contains "$WORK/err" "--snap1 not specified."
expect_rc 2 $T --snap2 1 "$md"; assert_contains "$WORK/err" "--snap1 not specified."
expect_rc 2 $T --snap1 0 "$md"; assert_contains "$WORK/err" "--snap2 not specified."
expect_rc 2 $T --snap1 x --snap2 1 "$md"; assert_contains "$WORK/err" "Couldn't parse thin id 1: 'x'"
expect_rc 2 $T --snap1 0 --snap2 1x "$md"; assert_contains "$WORK/err" "Couldn't parse thin id 2: '1x'"
expect_rc 2 $T --snap1 -1 --snap2 1 "$md"
expect_rc 2 $T --snap1 0 --root1 5 --snap2 1 "$md"; assert_contains "$WORK/err" "exclusive"
expect_rc 2 $T --snap1 0 --snap2 1 "$md" "$md"

expect_rc 1 $T --snap1 0 --snap2 99 "$md"
assert_contains "$WORK/err" "Unable to find mapping tree for snap2 (99)"
expect_rc 1 $T --snap1 99 --snap2 0 "$md"
assert_contains "$WORK/err" "Unable to find mapping tree for snap1 (99)"
[ ! -s "$WORK/out" ] || die "output printed on failure"

# --root1/--root2 name bottom-level roots: same diff as by device id,
# with the root block numbers in <diff left right>
r0=$("$DEVBIN/thin_damage" --dev-root 0 "$md"); r1=$("$DEVBIN/thin_damage" --dev-root 1 "$md")
expect_rc 0 $T --snap1 0 --snap2 1 --verbose "$md"; sed 1,2d "$WORK/out" > "$WORK/by_id"
expect_rc 0 $T --root1 "$r0" --root2 "$r1" --verbose "$md"
assert_contains "$WORK/out" "<diff left=\"$r0\" right=\"$r1\">"
sed 1,2d "$WORK/out" > "$WORK/by_root"; assert_same "$WORK/by_id" "$WORK/by_root"
expect_rc 1 $T --snap1 0 --root2 3 "$md"; assert_contains "$WORK/err" "snap2"

expect_rc 1 $T --snap1 0 --snap2 1 "$WORK/nonexistent"; assert_contains "$WORK/err" "Couldn't find input file"
expect_rc 1 $T --snap1 0 --snap2 1 "$WORK"; assert_contains "$WORK/err" "Not a block device or regular file"
head -c 100 /dev/zero > "$WORK/tiny"
expect_rc 1 $T --snap1 0 --snap2 1 "$WORK/tiny"; assert_contains "$WORK/err" "too small"
{ /usr/sbin/thin_dump "$md"; printf "%5000s\n" ""; } > "$WORK/x.xml"   # >= 4 KiB
expect_rc 1 $T --snap1 0 --snap2 1 "$WORK/x.xml"; assert_contains "$WORK/err" "This looks like XML"
head -c 1M /dev/zero > "$WORK/zero"
expect_rc 1 $T --snap1 0 --snap2 1 "$WORK/zero"; assert_contains "$WORK/err" "superblock"
expect_rc 1 $T -m --snap1 0 --snap2 1 "$md"; assert_contains "$WORK/err" "no current metadata snap"

[ -x "$DEVBIN/thin_damage" ] || die "$DEVBIN/thin_damage not built"
leaf=$("$DEVBIN/thin_damage" --leaf-of 1 "$md")
"$DEVBIN/thin_damage" --flip-byte "$leaf:100" "$md"
expect_rc 1 $T --snap1 1 --snap2 0 "$md"; assert_contains "$WORK/err" "snap1"
assert_contains "$WORK/err" "node $leaf: bad checksum"
[ "$(wc -l < "$WORK/err")" = 1 ] || die "more than one line on stderr"
expect_rc 0 $T --snap1 0 --snap2 2 "$md"   # the damage is in device 1 only
echo "errors ok"
