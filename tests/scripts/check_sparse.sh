#!/usr/bin/env bash
# thin_check on a sparse pool: 10^8 data blocks (6,128 data space-map
# bitmaps), a few thousand of them mapped.  The bitmaps that are all free
# on disk and hold no counted block take the short path (no decoding): the
# verdicts must stay those of the full comparison, which 1.1.0 gives too
# (0.9.0, which checks no data ref counts, on the first three): clean; a wrong nr_free or none_free_before hint in an all-free
# bitmap (a warning, exit 0); a leaked block there (exit 1, repaired by
# --auto-repair); a mapped block counted free (exit 1).
source "$TOP/tests/lib.sh"
need_ref0
need_ref1
DMG=$DEVBIN/thin_damage
CHK=$BIN/thin_check
P=$WORK/sparse.bin
"$DEVBIN/gen_pool" --scale tiny --nr-data-blocks 100000000 --binary -o "$P" > /dev/null 2>&1 ||
	die "gen_pool failed"

# verdicts FILE EXPECTED_RC [data]: ours and 1.1.0 agree on the exit status
# (1.1.0: 0 or 64), and 0.9.0 too unless "data" (it checks no data ref counts)
verdicts() {
	local rc0=0 rc1=0
	expect_rc "$2" "$CHK" "$1"
	/usr/sbin/thin_check "$1" > /dev/null 2>&1 || rc0=$?
	"$REF1/thin_check" "$1" > /dev/null 2>&1 || rc1=$?
	[ "${3:-}" = data ] || [ "$rc0" = "$2" ] || die "0.9.0 thin_check $1: exit $rc0, want $2"
	[ "$rc1" = "$([ "$2" = 0 ] && echo 0 || echo 64)" ] || die "1.1.0 thin_check $1: exit $rc1"
}

verdicts "$P" 0
assert_not_contains "$WORK/err" "data space map:"

cp "$P" "$WORK/a.bin"
"$DMG" --set-index-field data:5000:nr_free=16000 "$WORK/a.bin" > /dev/null
expect_rc 0 "$CHK" "$WORK/a.bin"
assert_contains "$WORK/err" "data space map: bitmap 5000 (block"
assert_contains "$WORK/err" "has nr_free 16000, expected 16320"

cp "$P" "$WORK/b.bin"
"$DMG" --set-index-field data:5000:none_free_before=7 "$WORK/b.bin" > /dev/null
expect_rc 0 "$CHK" "$WORK/b.bin"
assert_contains "$WORK/err" "has none_free_before 7 beyond its first free entry 0"

cp "$P" "$WORK/c.bin"
"$DMG" --set-bitmap-entry data:90000000=1 "$WORK/c.bin" > /dev/null
verdicts "$WORK/c.bin" 1 data
assert_contains "$WORK/err" "1 data blocks have leaked"
assert_contains "$WORK/err" "data block 90000000: reference count on disk 1, expected 0"
expect_rc 0 "$CHK" --auto-repair "$WORK/c.bin"
verdicts "$WORK/c.bin" 0

# a mapped block (thin 0's first) counted free: the bitmap holding it is not all free
cp "$P" "$WORK/d.bin"
vb=$("$BIN/thin_dump" "$P" | sed -n 's/.*origin_b[a-z]*="\([0-9]*\)".*/\1/p' | head -1)
db=$("$DMG" --mapping "0:$vb" "$WORK/d.bin" | cut -d' ' -f1)   # "DATA_BLOCK TIME"
[ -n "$db" ] || die "no mapped block found"
"$DMG" --set-bitmap-entry "data:$db=0" "$WORK/d.bin" > /dev/null
verdicts "$WORK/d.bin" 1 data
assert_contains "$WORK/err" "data block $db"
echo "sparse pool: clean, hints, leak and missing count judged as by the full comparison"
