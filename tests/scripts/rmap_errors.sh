#!/usr/bin/env bash
# thin_rmap: command line (strict --region parsing, exit 2) and bad input
# (exit 1, one line on stderr).
source "$TOP/tests/lib.sh"
T=$BIN/thin_rmap
md=$(fixture_copy snapshots)

expect_rc 0 $T --help; assert_contains "$WORK/out" "--region <block range>"
expect_rc 0 $T -V; [ -s "$WORK/out" ] || die "-V printed nothing"
expect_rc 2 $T --bogus --region 0..1 "$md"; assert_contains "$WORK/err" "Usage:"
expect_rc 2 $T --region 0..1; assert_contains "$WORK/err" "No input file provided."
expect_rc 2 $T "$md"; assert_contains "$WORK/err" "No regions provided."
expect_rc 2 $T --region; assert_contains "$WORK/err" "Usage:"
bad() {  # region reason
	expect_rc 2 $T --region "$1" "$md"
	assert_contains "$WORK/err" "badly formed region ($2)"
	[ ! -s "$WORK/out" ] || die "output for bad region '$1'"
}
bad 5..3 "end <= begin"
bad 5..5 "end <= begin"
bad 5 "no dots"
bad 5-7 "no dots"
bad a..b "couldn't parse numbers"
bad 1..b "couldn't parse numbers"
bad ..5 "couldn't parse numbers"
bad 5.. "couldn't parse numbers"
bad 5...7 "couldn't parse numbers"
bad 5..7x "couldn't parse numbers"
bad " 5..7" "couldn't parse numbers"
bad -1..7 "couldn't parse numbers"
bad +1..7 "couldn't parse numbers"
bad 0..18446744073709551616 "couldn't parse numbers"
expect_rc 0 $T --region 0..18446744073709551615 "$md"
[ -s "$WORK/out" ] || die "no output for the widest region"
# regions are half open and may overlap; one region given twice = once
expect_rc 0 $T --region 0..1 "$md"; cp "$WORK/out" "$WORK/one"
expect_rc 0 $T --region 0..1 --region 0..1 "$md"; assert_same "$WORK/one" "$WORK/out"
expect_rc 0 $T --region 0..2 "$md"; cmp -s "$WORK/one" "$WORK/out" && die "0..2 same as 0..1"

expect_rc 1 $T --region 0..1 "$WORK/nonexistent"; assert_contains "$WORK/err" "Couldn't find input file"
expect_rc 1 $T --region 0..1 "$WORK"; assert_contains "$WORK/err" "Not a block device or regular file"
head -c 100 /dev/zero > "$WORK/tiny"
expect_rc 1 $T --region 0..1 "$WORK/tiny"; assert_contains "$WORK/err" "too small"
{ /usr/sbin/thin_dump "$md"; printf "%5000s\n" ""; } > "$WORK/x.xml"   # >= 4 KiB
expect_rc 1 $T --region 0..1 "$WORK/x.xml"; assert_contains "$WORK/err" "This looks like XML"
head -c 1M /dev/zero > "$WORK/zero"
expect_rc 1 $T --region 0..1 "$WORK/zero"; assert_contains "$WORK/err" "superblock"
expect_rc 1 $T -m --region 0..1 "$md"; assert_contains "$WORK/err" "no current metadata snap"

[ -x "$DEVBIN/thin_damage" ] || die "$DEVBIN/thin_damage not built"
leaf=$("$DEVBIN/thin_damage" --leaf-of 1 "$md")
"$DEVBIN/thin_damage" --flip-byte "$leaf:100" "$md"
expect_rc 1 $T --region 0..4096 "$md"
assert_contains "$WORK/err" "thin device 1: node $leaf: bad checksum"
[ "$(wc -l < "$WORK/err")" = 1 ] || die "more than one line on stderr"
[ ! -s "$WORK/out" ] || die "partial output on failure"
# a leaf pointer beyond the device in a pool whose workers decode while the
# plan runs (inner nodes over many leaves): the one-line fault, no output
"$DEVBIN/gen_pool" --origins 2 --snapshots 2 --mappings 120000 --seed 3 --binary \
	-o "$WORK/wide.bin" > /dev/null
root=$("$DEVBIN/thin_damage" --dev-root 1 "$WORK/wide.bin")
"$DEVBIN/thin_damage" --set-node-value "$root:1=99999999" "$WORK/wide.bin"
expect_rc 1 $T --region 0..100000 "$WORK/wide.bin"
assert_contains "$WORK/err" "thin device 1: node 99999999: block out of range"
[ "$(wc -l < "$WORK/err")" = 1 ] || die "more than one line on stderr"
[ ! -s "$WORK/out" ] || die "partial output on failure"
expect_rc 1 $T --all-devices --region 0..100000 "$WORK/wide.bin"
assert_contains "$WORK/err" "thin device 1: node 99999999: block out of range"
echo "errors ok"
