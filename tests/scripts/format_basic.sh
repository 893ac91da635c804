#!/usr/bin/env bash
# thin_format writes empty valid metadata and refuses to overwrite metadata without --force.
source "$TOP/tests/lib.sh"
need_ref0
need_ref1
F=$BIN/thin_format
out=$WORK/f.bin
truncate -s 8M "$out"
expect_rc 0 "$F" --data-block-size 64k --data-size 1g --transaction-id 5 "$out"
expect_rc 0 /usr/sbin/thin_check "$out"
[ -x "$BIN/thin_check" ] && expect_rc 0 "$BIN/thin_check" "$out"
expect_rc 0 /usr/sbin/thin_dump "$out"
printf '<superblock uuid="" time="0" transaction="5" flags="0" version="2" data_block_size="128" nr_data_blocks="16384">\n</superblock>\n' > "$WORK/want.xml"
assert_same "$WORK/want.xml" "$WORK/out"
expect_rc 0 "$REF1/thin_check" "$out"
same_dump_1x "$out"
cp "$out" "$WORK/before.bin"
expect_rc 1 "$F" --nr-data-blocks 100 "$out"
assert_contains "$WORK/err" "already holds thin metadata"
assert_same "$WORK/before.bin" "$out"
expect_rc 0 "$F" --nr-data-blocks 100 --data-block-size 256 -f -o "$out"
expect_rc 0 /usr/sbin/thin_dump "$out"
assert_contains "$WORK/out" 'data_block_size="256" nr_data_blocks="100"'
expect_rc 0 /usr/sbin/thin_check "$out"
expect_rc 0 "$REF1/thin_check" "$out"
same_dump_1x "$out"
# same bytes as a restore of the equivalent XML
printf '<superblock uuid="" time="0" transaction="0" data_block_size="256" nr_data_blocks="100">\n</superblock>\n' > "$WORK/e.xml"
truncate -s 8M "$WORK/r.bin"
expect_rc 0 "$BIN/thin_restore" -i "$WORK/e.xml" -o "$WORK/r.bin"
truncate -s 8M "$WORK/f2.bin"
expect_rc 0 "$F" --nr-data-blocks 100 --data-block-size 256 "$WORK/f2.bin"
assert_same "$WORK/r.bin" "$WORK/f2.bin"
# errors
expect_rc 1 "$F" --nr-data-blocks 100 --data-block-size 96k "$WORK/f3.bin"
assert_contains "$WORK/err" "Output file does not exist."
truncate -s 8M "$WORK/f3.bin"
expect_rc 1 "$F" --nr-data-blocks 100 --data-block-size 96k "$WORK/f3.bin"
assert_contains "$WORK/err" "invalid data block size 192"
expect_rc 2 "$F" "$WORK/f3.bin"
expect_rc 2 "$F" --nr-data-blocks 1 --data-size 1g "$WORK/f3.bin"
expect_rc 2 "$F" --nr-data-blocks 1
expect_rc 0 "$F" -h
expect_rc 0 "$F" -V
echo "format: ok"
