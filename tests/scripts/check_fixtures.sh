#!/usr/bin/env bash
# thin_check agrees with the ground truth on every kernel fixture: exit code
# and TRANSACTION_ID of ref-thin_check.txt; METADATA_FREE_BLOCKS is the
# metadata sm nr_blocks - nr_allocated; -m on held_root; --skip-mappings;
# --super-block-only.  Read-only: the file is never modified.
# The expected exit code is the stricter of the two references where the
# fixture has both: 0.9.0 does not check data reference counts (REFERENCE.md
# §3.3), 1.1.0 (ref1-*) does, and so do we, so a kernel image with a leaked
# data block (full_512k: the commit that would have mapped it failed) must
# fail as 1.1.0's check fails (exit 1 for its 64).  --skip-mappings reads no
# data reference counts: 0.9.0's exit code stands there (1.1.0's
# --skip-mappings fails with "Bad file descriptor" whenever needs_check is
# set, so it is no oracle for that option).
source "$TOP/tests/lib.sh"
need_ref1
CHK=$BIN/thin_check
# rc_of FILE: the "exit code: N" of a recorded reference run, 0 or 1
rc_of() { [ "$(sed -n 's/^exit code: //p' "$1")" = 0 ] && echo 0 || echo 1; }
n=0
for fx in $(fixtures); do
	ref=$FIXTURES/$fx/ref-thin_check.txt
	ref1=$FIXTURES/$fx/ref1-thin_check.txt
	[ -f "$ref" ] || continue
	img=$(fixture_copy "$fx")
	cp "$img" "$WORK/orig.bin"
	want_rc=$(rc_of "$ref")
	want_skip=$(rc_of "$FIXTURES/$fx/ref-thin_check-skip-mappings.txt")
	if [ -f "$ref1" ]; then
		[ "$(rc_of "$ref1")" = 0 ] || want_rc=1
	fi
	want_tid=$(grep '^TRANSACTION_ID=' "$ref")
	# 1.x exits 64 on any failure (UPSTREAM-1x.md; ours and 0.9.0: 1)
	want_rc1=$([ "$want_rc" = 0 ] && echo 0 || echo 64)
	info=$("$DEVBIN/thin_damage" --info "$img")
	nr=$(echo "$info" | sed -n 's/^metadata_sm_nr_blocks=//p')
	alloc=$(echo "$info" | sed -n 's/^metadata_nr_allocated=//p')
	sbflags=$(echo "$info" | sed -n 's/^flags=//p')
	note "$fx (expect exit $want_rc, $want_tid)"
	expect_rc "$want_rc" "$CHK" "$img"
	assert_contains "$WORK/out" "$want_tid"
	# the second oracle: 1.1.0 agrees (also with --skip-mappings)
	expect_rc "$want_rc1" "$REF1/thin_check" "$img"
	assert_contains "$WORK/out" "$want_tid"
	if [ "$fx" = needs_check ]; then
		# a 1.1.0 bug (docs/reference-1x.md): --skip-mappings on a pool
		# with needs_check set fails with EBADF
		expect_rc 64 "$REF1/thin_check" --skip-mappings "$img"
		assert_contains "$WORK/err" "Bad file descriptor"
	else
		expect_rc "$want_rc1" "$REF1/thin_check" --skip-mappings "$img"
	fi
	expect_rc "$want_rc" "$CHK" "$img"
	assert_contains "$WORK/out" "METADATA_FREE_BLOCKS=$((nr - alloc))"
	# findings: the needs_check warning where the flag is set, and what
	# 1.1.0 also found (leaks), nothing else
	grep '^  ' "$WORK/err" | grep -v '^  needs_check flag is set' > "$WORK/findings" || true
	if [ "$sbflags" = 1 ]; then
		assert_contains "$WORK/err" "needs_check flag is set"
	else
		assert_not_contains "$WORK/err" "needs_check flag is set"
	fi
	if [ -s "$WORK/findings" ]; then
		[ "$want_rc" = 1 ] || { cat "$WORK/err"; die "$fx: unexpected findings"; }
		if grep -q 'data blocks have leaked' "$ref1"; then
			assert_contains "$WORK/err" "data blocks have leaked"
			grep -v 'data blocks have leaked\|reference count on disk 1, expected 0\|perhaps you wanted' \
				"$WORK/findings" > "$WORK/other" || true
			[ ! -s "$WORK/other" ] || { cat "$WORK/err"; die "$fx: findings beyond 1.1.0's leaks"; }
		fi
	else
		[ "$want_rc" = 0 ] || { cat "$WORK/err"; die "$fx: exit 1 without a finding"; }
	fi
	assert_contains "$WORK/err" "checking space map counts"
	expect_rc "$want_skip" "$CHK" --skip-mappings "$img"
	assert_contains "$WORK/err" "examining top level of mapping tree"
	assert_not_contains "$WORK/err" "checking space map counts"
	expect_rc "$want_skip" "$CHK" --super-block-only "$img"
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
