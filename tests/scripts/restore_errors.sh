#!/usr/bin/env bash
# Bad input: one clear line, exit 1, and the output is left untouched.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1
R=$BIN/thin_restore
out=$WORK/out.bin
truncate -s 16M "$out"
expect_rc 0 "$R" -i "$FIXTURES/snapshots/ref-thin_dump.xml" -o "$out"
cp "$out" "$WORK/orig.bin"

SB='<superblock uuid="" time="5" transaction="1" data_block_size="128" nr_data_blocks="100">'
DEV='<device dev_id="1" mapped_blocks="1" transaction="0" creation_time="0" snap_time="0">'
bad() { # expected-message xml-body
	local want=$1; shift
	printf '%s\n' "$@" > "$WORK/bad.xml"
	expect_rc 1 "$R" -i "$WORK/bad.xml" -o "$out"
	assert_contains "$WORK/err" "$want"
	[ "$(wc -l < "$WORK/err")" -eq 1 ] || { cat "$WORK/err"; die "more than one line"; }
	assert_same "$WORK/orig.bin" "$out"
}
bad "bad.xml:3: mapping beyond end of data device (100 >= 100)" "$SB" "$DEV" \
	'<single_mapping origin_block="0" data_block="100" time="0"/>' '</device></superblock>'
bad "bad.xml:3: mappings out of order or overlapping at origin block 5" "$SB" "$DEV" \
	'<range_mapping origin_begin="0" data_begin="0" length="10" time="0"/><single_mapping origin_block="5" data_block="50" time="0"/>' \
	'</device></superblock>'
bad "bad.xml:4: mappings out of order or overlapping at origin block 3" "$SB" "$DEV" \
	'<single_mapping origin_block="7" data_block="1" time="0"/>
<single_mapping origin_block="3" data_block="2" time="0"/>' '</device></superblock>'
bad "duplicate device id 1" "$SB" "$DEV" '</device>' "$DEV" '</device></superblock>'
bad "device id 16777216 is too large" "$SB" \
	'<device dev_id="16777216" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0">' \
	'</device></superblock>'
bad "invalid data block size 100" \
	'<superblock uuid="" time="5" transaction="1" data_block_size="100" nr_data_blocks="100">' '</superblock>'
bad "mapping time 16777216 is too large" "$SB" "$DEV" \
	'<single_mapping origin_block="0" data_block="1" time="16777216"/>' '</device></superblock>'
bad "nr_data_blocks 1099511627777 is too large" \
	'<superblock uuid="" time="5" transaction="1" data_block_size="128" nr_data_blocks="1099511627777">' "$DEV" \
	'<single_mapping origin_block="0" data_block="1099511627776" time="0"/>' '</device></superblock>'
bad "bad.xml:3: mismatched tag" "$SB" "$DEV" '</superblock>'
bad "bad.xml:1: unknown tag 'foo'" '<foo/>'
bad "missing attribute 'nr_data_blocks' in <superblock>" '<superblock uuid="" time="5" transaction="1" data_block_size="128">' '</superblock>'
bad "bad value 'x' for attribute 'time'" '<superblock uuid="" time="x" transaction="1" data_block_size="128" nr_data_blocks="1">' '</superblock>'
bad "unknown attribute 'colour'" "$SB" '<device dev_id="1" colour="red"/>' '</superblock>'
bad "Couldn't find sub tree 'nope'." "$SB" "$DEV" '<ref name="nope"/>' '</device></superblock>'
bad "bad.xml:3: no element found" "$SB" "$DEV"
bad "range mapping of length 0" "$SB" "$DEV" '<range_mapping origin_begin="0" data_begin="0" length="0" time="0"/>' '</device></superblock>'

# output too small: says how big it must be, nothing written
truncate -s 64K "$WORK/tiny.bin"
"$DEVBIN/gen_pool" --scale tiny --seed 1 -o "$WORK/g.xml" >/dev/null 2>&1
cp "$WORK/tiny.bin" "$WORK/tiny0.bin"
expect_rc 1 "$R" -i "$WORK/g.xml" -o "$WORK/tiny.bin"
assert_contains "$WORK/err" "output too small: the metadata needs"
assert_same "$WORK/tiny0.bin" "$WORK/tiny.bin"

# command line
expect_rc 1 "$R" -i "$WORK/g.xml" -o "$WORK/missing.bin"
assert_contains "$WORK/err" "Output file does not exist."
expect_rc 1 "$R" -i "$WORK/missing.xml" -o "$out"
assert_contains "$WORK/err" "Couldn't find input file"
expect_rc 2 "$R" -i "$WORK/g.xml"
expect_rc 2 "$R" -o "$out"
expect_rc 2 "$R" --bogus
expect_rc 0 "$R" -V
assert_contains "$WORK/out" "0."
expect_rc 0 "$R" -h
assert_contains "$WORK/out" "--nr-data-blocks"

# LVM's dialect: one-space indent, no flags; overrides
printf '<superblock uuid="" time="1" transaction="2" version="2" data_block_size="128" nr_data_blocks="1000">\n <device dev_id="1" mapped_blocks="1000" transaction="0" creation_time="1" snap_time="1">\n  <range_mapping origin_begin="0" data_begin="0" length="1000" time="1"/>\n </device>\n</superblock>\n' > "$WORK/lvm.xml"
expect_rc 0 "$R" -i "$WORK/lvm.xml" -o "$out" --transaction-id 9 --nr-data-blocks 2000
expect_rc 0 /usr/sbin/thin_dump "$out"
assert_contains "$WORK/out" 'transaction="9" flags="0" version="2" data_block_size="128" nr_data_blocks="2000"'
assert_contains "$WORK/out" '<range_mapping origin_begin="0" data_begin="0" length="1000" time="1"/>'
expect_rc 1 "$R" -i "$WORK/lvm.xml" -o "$out" --data-block-size 100

# Rust dialect: def/ref shared subtrees, comments, no flags
{
	echo '<!-- rust --><superblock uuid="" time="1" transaction="2" version="2" data_block_size="128" nr_data_blocks="2000">'
	echo '<def name="7">'; echo '<range_mapping origin_begin="0" data_begin="0" length="600" time="0"/>'; echo '</def>'
	echo '<device dev_id="1" mapped_blocks="600" transaction="0" creation_time="0" snap_time="1"><ref name="7"/></device>'
	echo '<device dev_id="2" mapped_blocks="601" transaction="0" creation_time="1" snap_time="1"><ref name="7"/>'
	echo '<single_mapping origin_block="1000" data_block="1000" time="1"/></device>'
	echo '</superblock>'
} > "$WORK/rust.xml"
expect_rc 0 "$R" -i "$WORK/rust.xml" -o "$out"
expect_rc 0 /usr/sbin/thin_check "$out"
[ -x "$BIN/thin_check" ] && expect_rc 0 "$BIN/thin_check" "$out"
expect_rc 0 /usr/sbin/thin_dump "$out"
assert_contains "$WORK/out" '<range_mapping origin_begin="0" data_begin="0" length="600" time="0"/>'
assert_contains "$WORK/out" 'mapped_blocks="601"'
expect_rc 0 "$REF1/thin_check" "$out"
same_dump_1x "$out"
# 1.1.0's own dump of it (def/ref again) restores to the same metadata
"$REF1/thin_dump" "$out" > "$WORK/again.xml"
assert_contains "$WORK/again.xml" '<def name='
cp "$out" "$WORK/first.bin"
truncate -s 0 "$out"; truncate -s 8M "$out"
expect_rc 0 "$R" -i "$WORK/again.xml" -o "$out"
"$BIN/thin_dump" "$WORK/first.bin" > "$WORK/first.xml"
"$BIN/thin_dump" "$out" > "$WORK/second.xml"
assert_same "$WORK/first.xml" "$WORK/second.xml"
echo "restore errors: ok"
