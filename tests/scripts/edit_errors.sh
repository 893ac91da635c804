#!/usr/bin/env bash
# thin_edit: a refused message (the kernel's errors, bad syntax, a later
# message failing) is one line on stderr, exit 1, and not one byte of the
# metadata changes; usage errors exit 2; --dry-run reports and writes nothing.
source "$TOP/tests/lib.sh"
E=$BIN/thin_edit
M=$(fixture_copy snapshots)
cp "$M" "$WORK/orig.bin"

bad() { # expected-message message...
	local want=$1; shift
	expect_rc 1 "$E" "$M" "$@"
	assert_contains "$WORK/err" "$want"
	[ "$(wc -l < "$WORK/err")" -eq 1 ] || { cat "$WORK/err"; die "more than one line"; }
	[ ! -s "$WORK/out" ] || die "something on stdout"
	assert_same "$WORK/orig.bin" "$M"
}
note "the kernel's errors"
bad "thin_edit: 'delete 99': device 99 does not exist" delete 99
bad "'create_thin 0': device 0 already exists" "create_thin 0"
bad "'create_snap 9 2': device 9 already exists" create_snap 9 2 create_snap 9 2
bad "'create_snap 9 42': origin device 42 does not exist" create_snap 9 42
bad "'set_transaction_id 6 8': the transaction id is 7, not 6" set_transaction_id 6 8
bad "'release_metadata_snap': no metadata snapshot is held" release_metadata_snap
bad "'reserve_metadata_snap': a metadata snapshot is already held" reserve_metadata_snap reserve_metadata_snap
note "offline messages"
bad "'rename 1 2': device 2 already exists" rename 1 2
bad "'rename 8 9': device 8 does not exist" rename 8 9
bad "'grow_data 10': cannot shrink the space map (4096 blocks now, 10 asked)" grow_data 10
bad "'grow_metadata 4096': the metadata device has room for 2048 blocks, not 4096" grow_metadata 4096
bad "'grow_data 1099511627777': 1099511627777 data blocks is more than 2^40" grow_data 1099511627777
note "syntax"
bad "'delete 16777216': invalid device id 16777216 (0 to 16777215)" delete 16777216
bad "unknown message 'frobnicate'" frobnicate 1
bad "'create_snap 9': missing argument (create_snap ID ORIGIN_ID)" create_snap 9
bad "'delete 1 2': too many arguments (delete ID)" "delete 1 2"
bad "'reserve_metadata_snap 3': too many arguments" reserve_metadata_snap 3
bad "a message must come before '5'" 5 delete 1
bad "number out of range" set_transaction_id 7 99999999999999999999999
bad "unknown message '-5'" delete -5
bad "no message given" " "
note "a later message fails: the earlier ones are not written either"
bad "'delete 1': device 1 does not exist" "delete 1" "create_thin 8" "delete 1"
bad "'create_thin 8': device 8 already exists" create_thin 8 create_snap 9 8 create_thin 8

note "needs_check: refused unless cleared first, as the kernel refuses a pool that needs a check"
N=$(fixture_copy needs_check); cp "$N" "$WORK/n0.bin"
expect_rc 1 "$E" "$N" create_thin 7
assert_contains "$WORK/err" "the needs_check flag is set"
assert_same "$WORK/n0.bin" "$N"
expect_rc 0 "$E" "$N" clear_needs_check create_thin 7
expect_rc 0 "$BIN/thin_check" "$N"; assert_not_contains "$WORK/err" "needs_check"
expect_rc 0 "$E" "$N" set_needs_check
expect_rc 0 "$BIN/thin_check" "$N"; assert_contains "$WORK/err" "needs_check flag is set"

note "--dry-run: the report, and nothing written"
expect_rc 0 "$E" --dry-run "$M" delete 1 create_snap 9 0 set_transaction_id 7 8
assert_contains "$WORK/out" "delete 1: device 1 deleted (74 mapped blocks, 0 data blocks freed)"
assert_contains "$WORK/out" "create_snap 9 0: new snapshot 9 of device 0 (64 mapped blocks)"
assert_contains "$WORK/out" "create_snap 9 0: time 3 -> 4"
assert_contains "$WORK/out" "set_transaction_id 7 8: transaction id 7 -> 8"
assert_contains "$WORK/out" "data blocks in use: 100 -> 100 (of 4096)"
assert_contains "$WORK/out" "dry run: nothing written"
assert_same "$WORK/orig.bin" "$M"
expect_rc 0 "$E" -n "$M" delete 0 delete 1 delete 2 delete 3
assert_contains "$WORK/out" "data blocks in use: 100 -> 0 (of 4096)"
assert_same "$WORK/orig.bin" "$M"
note "-v reports a real run; -q prints nothing, even an error"
expect_rc 0 "$E" -v "$M" "create_thin 9"
assert_contains "$WORK/out" "create_thin 9: new thin device 9 (transaction 7, time 3)"
assert_contains "$WORK/out" "committed"
expect_rc 1 "$E" -q "$M" delete 99
[ ! -s "$WORK/out" ] && [ ! -s "$WORK/err" ] || die "-q printed something"
expect_rc 0 "$E" -q -n "$M" delete 9
[ ! -s "$WORK/out" ] || die "-q -n printed something"
note "message names are case-insensitive (the kernel's strcasecmp); both grammars"
expect_rc 0 "$E" "$M" "CREATE_snap 10 9" Delete 9
"$BIN/thin_dump" "$M" | grep -c '<device dev_id="10"' | grep -qx 1 || die "snapshot 10 missing"
cp "$WORK/orig.bin" "$WORK/a.bin"; cp "$WORK/orig.bin" "$WORK/b.bin"
expect_rc 0 "$E" "$WORK/a.bin" "create_snap 5 1" "delete 2" "set_transaction_id 7 9"
expect_rc 0 "$E" "$WORK/b.bin" create_snap 5 1 delete 2 set_transaction_id 7 9
"$BIN/thin_dump" "$WORK/a.bin" > "$WORK/a.xml"; "$BIN/thin_dump" "$WORK/b.bin" > "$WORK/b.xml"
assert_same "$WORK/a.xml" "$WORK/b.xml"

note "bad input files"
expect_rc 1 "$E" "$WORK/missing" delete 1; assert_contains "$WORK/err" "Couldn't find input file"
expect_rc 1 "$E" "$WORK" delete 1; assert_contains "$WORK/err" "Not a block device or regular file"
printf 'abc' > "$WORK/tiny"; expect_rc 1 "$E" "$WORK/tiny" delete 1; assert_contains "$WORK/err" "too small"
{ cat "$FIXTURES/snapshots/ref-thin_dump.xml"; printf '%8192s\n' ''; } > "$WORK/pool.xml"
expect_rc 1 "$E" "$WORK/pool.xml" delete 1; assert_contains "$WORK/err" "This looks like XML"
truncate -s 1M "$WORK/zero.bin"
expect_rc 1 "$E" "$WORK/zero.bin" delete 1; assert_contains "$WORK/err" "superblock"
[ "$(wc -l < "$WORK/err")" -eq 1 ] || die "more than one line"
cp "$WORK/orig.bin" "$WORK/ro.bin"; chmod 444 "$WORK/ro.bin"
if [ "$(id -u)" != 0 ]; then
	expect_rc 1 "$E" "$WORK/ro.bin" delete 1; assert_contains "$WORK/err" "cannot open"
fi
expect_rc 0 "$E" -n "$WORK/ro.bin" delete 1   # a dry run opens read-only

note "usage errors: exit 2"
expect_rc 2 "$E"; assert_contains "$WORK/err" "No input file provided"
expect_rc 2 "$E" "$M"; assert_contains "$WORK/err" "no message given"
expect_rc 2 "$E" --bogus "$M" delete 1; assert_contains "$WORK/err" "Usage: thin_edit"
expect_rc 0 "$E" --help; assert_contains "$WORK/out" "Usage: thin_edit"
expect_rc 0 "$E" -V
[ "$(cat "$WORK/out")" = "$(sed -n 's/.*THINMETA_VERSION "\(.*\)"/\1/p' "$TOP/lib/util/cli.h")" ] || die "bad version"
# options end at the metadata path: a message word is never an option
cp "$M" "$WORK/now.bin"
expect_rc 1 "$E" "$M" delete -v; assert_contains "$WORK/err" "unknown message '-v'"
assert_same "$WORK/now.bin" "$M"
echo "thin_edit errors: ok"
