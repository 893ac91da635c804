#!/usr/bin/env bash
# thin_metadata_size: the Rust 1.x formula, units, -n variants, errors.
source "$TOP/tests/lib.sh"
M=$BIN/thin_metadata_size
chk() { # expected args...
	local want=$1; shift
	expect_rc 0 "$M" "$@"
	[ "$(cat "$WORK/out")" = "$want" ] || die "$*: got '$(cat "$WORK/out")', want '$want'"
}
# REFERENCE.md §5.1 (0.9.0 prints 1056 and 1073224: it omits the superblock block)
chk "1064 sectors" -b 128 -s 2097152 -m 1
chk "1073232 sectors" -b 64k -s 1t -m 1000
chk "1073232" -b 64k -s 1t -m 1000 -n
chk "1073232s" -b 64k -s 1t -m 1000 -n=short
chk "1073232sectors" -b 64k -s 1t -m 1000 --numeric-only=long
chk "549494784 bytes" -b 64k -s 1t -m 1000 -u b
chk "524.04 mebibytes" --block-size 64k --pool-size 1t --max-thins 1000 --unit m
chk "5337088" -b 64k -s 10g -m 1 -u b -n
# formula against independent arithmetic, incl. the 4161600-block cap
for args in "65536 1099511627776 1000" "1048576 10995116277760 5" "65536 1125899906842624 1"; do
	set -- $args
	nd=$(($2 / $1)); leaves=$(((nd + 125) / 126)); b=$((1 + leaves + $3))
	[ $b -gt 4161600 ] && b=4161600
	chk "$((b * 4096))" -b "$1"b -s "$2"b -m "$3" -u b -n
done
expect_rc 1 "$M" -b 32k -s 1g -m 1
assert_contains "$WORK/err" "block size must be a multiple of 64 KiB"
expect_rc 1 "$M" -b 2g -s 10t -m 1
assert_contains "$WORK/err" "maximum block size is 1 GiB"
expect_rc 1 "$M" -b 1m -s 1m -m 1
assert_contains "$WORK/err" "pool size must be larger than block size"
expect_rc 2 "$M" -b 64k -s 1g
assert_contains "$WORK/err" "max thins required"
expect_rc 2 "$M" -s 1g -m 1
expect_rc 2 "$M" -b 64k -s 1g -m 1 -n=medium
expect_rc 2 "$M" -b 64k -s 1g -m 1 -u furlong
expect_rc 1 "$M" -b 64q -s 1g -m 1
echo "metadata_size: ok"
