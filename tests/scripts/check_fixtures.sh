#!/usr/bin/env bash
# thin_check agrees with the ground truth on every kernel fixture: exit code
# and TRANSACTION_ID of ref-thin_check.txt; METADATA_FREE_BLOCKS is the
# metadata sm nr_blocks - nr_allocated; -m on held_root; --skip-mappings;
# --super-block-only.  Read-only: the file is never modified.
source "$TOP/tests/lib.sh"
need_ref1
CHK=$BIN/thin_check
n=0
for fx in $(fixtures); do
	ref=$FIXTURES/$fx/ref-thin_check.txt
	[ -f "$ref" ] || continue
	img=$(fixture_copy "$fx")
	cp "$img" "$WORK/orig.bin"
	want_rc=$(sed -n 's/^exit code: //p' "$ref")
	want_tid=$(grep '^TRANSACTION_ID=' "$ref")
	info=$("$DEVBIN/thin_damage" --info "$img")
	nr=$(echo "$info" | sed -n 's/^metadata_sm_nr_blocks=//p')
	alloc=$(echo "$info" | sed -n 's/^metadata_nr_allocated=//p')
	note "$fx (expect exit $want_rc, $want_tid)"
	expect_rc "$want_rc" "$CHK" "$img"
	assert_contains "$WORK/out" "$want_tid"
	# the second oracle: 1.1.0 agrees (also with --skip-mappings)
	expect_rc "$want_rc" "$REF1/thin_check" "$img"
	assert_contains "$WORK/out" "$want_tid"
	if [ "$fx" = needs_check ]; then
		# a 1.1.0 bug (docs/reference-1x.md): --skip-mappings on a pool
		# with needs_check set fails with EBADF
		expect_rc 64 "$REF1/thin_check" --skip-mappings "$img"
		assert_contains "$WORK/err" "Bad file descriptor"
	else
		expect_rc "$want_rc" "$REF1/thin_check" --skip-mappings "$img"
	fi
	expect_rc "$want_rc" "$CHK" "$img"
	assert_contains "$WORK/out" "METADATA_FREE_BLOCKS=$((nr - alloc))"
	# no finding but the needs_check warning
	if grep -q '^  ' "$WORK/err"; then
		[ "$fx" = needs_check ] || { cat "$WORK/err"; die "$fx: unexpected findings"; }
		assert_contains "$WORK/err" "needs_check flag is set"
	fi
	assert_contains "$WORK/err" "checking space map counts"
	expect_rc "$want_rc" "$CHK" --skip-mappings "$img"
	assert_contains "$WORK/err" "examining top level of mapping tree"
	assert_not_contains "$WORK/err" "checking space map counts"
	expect_rc "$want_rc" "$CHK" --super-block-only "$img"
	assert_not_contains "$WORK/err" "examining devices tree"
	assert_contains "$WORK/out" "$want_tid"
	assert_contains "$WORK/out" "METADATA_FREE_BLOCKS=$((nr - alloc))"
	expect_rc "$want_rc" "$CHK" -q "$img"
	[ ! -s "$WORK/out" ] && [ ! -s "$WORK/err" ] || die "$fx: -q printed something"
	# -m: the snapshot where there is one, an error elsewhere
	held=$(echo "$info" | sed -n 's/^held_root=//p')
	if [ "$held" != 0 ]; then
		expect_rc 0 "$CHK" -m "$img"
		assert_not_contains "$WORK/err" "  "
		assert_contains "$WORK/err" "examining mapping tree"
	else
		expect_rc 1 "$CHK" -m "$img"
		assert_contains "$WORK/err" "no current metadata snap"
	fi
	assert_same "$img" "$WORK/orig.bin"
	n=$((n + 1))
done
[ "$n" -ge 8 ] || die "only $n fixtures checked"
echo "check_fixtures: $n fixtures"
